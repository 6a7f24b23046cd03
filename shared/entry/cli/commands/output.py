"""The consoles and exit codes every `chatft` command shares."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2

# azure-identity logs each failed sign-in as a WARNING holding every source's message (ChainedTokenCredential,
# identity/_credentials/chained.py), which Python prints to stderr when nothing configures logging: a command says
# it once, in one line (shared.azure.identity.sign_in_failure); CHATFT_DEBUG=1 keeps the SDK's text.
if not os.environ.get("CHATFT_DEBUG"):
    logging.getLogger("azure.identity").setLevel(logging.ERROR)

# soft_wrap: Rich must never break a path, JSON path or message mid-line (users grep and copy them).
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One red line on stderr (never markup from the message), then exit with `code`."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def open_input(path: Path) -> BinaryIO:
    """The input file, opened for reading; only a regular file (a FIFO or a device could block or never end)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a pipe, device or socket)"
            fail(f"{path} is {kind}: give the path of a .jsonl file")
        return path.open("rb")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
