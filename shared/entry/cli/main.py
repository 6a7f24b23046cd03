"""The `chatft` console script: a shim that imports the real command line only once Ctrl-C is
handled, so an interrupt at any moment, even while typer and rich are loading, is one quiet line."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from shared.entry.cli.app import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
