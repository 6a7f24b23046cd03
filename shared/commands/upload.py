"""`chatft upload`: placeholder; the command is being built (issue 12)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `chatft` app."""
