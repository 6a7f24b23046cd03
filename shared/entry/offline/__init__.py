"""The offline loop's entry points: `chatft dev` (dev_session) and `make run` (demo)."""
