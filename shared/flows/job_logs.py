"""A job's log as `az ml job stream` prints it: each file under a "Streaming <file>" banner, then only what is new.

The backend hands over each log file whole at every read (Workspace.job_log); this prints the lines not printed
before, so following a job is reading it again every few seconds until its status is terminal. The banner and
its underline are azure-ai-ml's own (`_incremental_print` in azure/ai/ml/operations/_job_ops_helper.py). Unlike
the SDK, a line still being written (no newline yet) waits for the next read while the job runs, so it is never
printed in two pieces or skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.domain.run_events import outcome_of_status
from shared.domain.workspace import JobLog


class JobGone(LookupError):
    """The backend has no such job (offline: its state folder was removed)."""


def ended(status: str) -> bool:
    """Completed, Failed or Canceled (however the backend spells them)."""
    return outcome_of_status(status) is not None


class LogPrinter:
    """Writes each file's lines once, in order, through `write` (one call per line, newline included)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._printed: dict[str, int] = {}

    @property
    def printed(self) -> int:
        return sum(self._printed.values())

    def show(self, log: JobLog, *, whole: bool) -> None:
        """Print what is new in `log`; `whole`: the last line too, even without its newline (nothing more comes)."""
        for name, text in log.files:
            lines = text.splitlines()
            if not whole and text and not text.endswith(("\n", "\r")):
                lines = lines[:-1]
            done = self._printed.get(name, 0)
            if len(lines) <= done:
                continue
            if done == 0:
                self._write(f"\nStreaming {name}\n{'=' * (len(name) + 10)}\n\n")
            for line in lines[done:]:
                self._write(line + "\n")
            self._printed[name] = len(lines)


def stream(
    read: Callable[[], JobLog | None],
    printer: LogPrinter,
    *,
    follow: bool,
    interval: float,
    waiting: Callable[[JobLog], None] = lambda log: None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobLog:
    """Print the log once, or with `follow` until the job's status is terminal; returns the last read.
    `waiting(log)` is called once when following a job that has logged nothing yet."""
    told = False
    while True:
        log = read()
        if log is None:
            raise JobGone("the backend has no such job")
        done = not follow or ended(log.status)
        printer.show(log, whole=done)
        if done:
            return log
        if not told and not printer.printed:
            waiting(log)
            told = True
        sleep(interval)
