"""`--json` for a command that prints as it goes: one JSON object per line on stdout, the human lines on stderr.

A script reads stdout line by line (`jq -c`, `for line in proc.stdout`) while a person still sees progress.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
import typer

from shared.entry.cli.commands.output import out

_on = False


def start(ctx: typer.Context) -> None:
    """JSON lines on for this command: `out` writes to stderr until the command (`ctx`) ends."""
    global _on
    _on = True
    out.file = sys.stderr

    def stop() -> None:
        global _on
        _on = False
        out.file = None  # back to whatever sys.stdout is

    ctx.call_on_close(stop)


def emit(event: str, **fields: Any) -> None:
    """One JSON object, {"event": event, **fields}, when --json is on; nothing otherwise."""
    if _on:
        sys.stdout.write(orjson.dumps({"event": event, **fields}, default=str).decode() + "\n")
        sys.stdout.flush()
