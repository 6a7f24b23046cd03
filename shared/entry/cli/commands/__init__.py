"""The `chatft` commands that act on uploads (entry layer: they wire flows, adapters and settings)."""
