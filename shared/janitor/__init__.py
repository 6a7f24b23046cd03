"""The idle-endpoint janitor: a pure policy (`policy`) and the run that applies it (`run`)."""
