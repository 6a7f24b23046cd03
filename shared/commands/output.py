"""The consoles and exit codes every `chatft` command shares."""

from __future__ import annotations

from rich.console import Console

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2

# soft_wrap: Rich must never break a path, JSON path or message mid-line (users grep and copy them).
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
