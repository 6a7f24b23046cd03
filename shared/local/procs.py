"""The local loop's child processes (Azurite, scoring servers, training jobs): started in their own
process group so the terminal's Ctrl-C reaches only us and we decide the order; stopped together
and fast; and never outliving the Python process that started them, even if it is killed (one that
must save first, as an Azurite with data on disk, is told with SIGTERM instead of being killed)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

PARENT_ENV = "CHATFT_PARENT_PID"
"""Set in a Python child's environment: the pid whose death the child watches for (`watch_parent`)."""
_PR_SET_PDEATHSIG = 1
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
"""Looked up here, not in the child: between fork and exec the child should do as little as possible."""


def _signal_on_parent_death(sig: int) -> Any:
    def arm() -> None:  # pragma: no cover - runs in the child between fork and exec
        """Linux: the kernel sends `sig` to the child when the thread that forked it exits (kept across exec)."""
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, sig)

    return arm


def start(args: list[str], *, on_parent_death: int = signal.SIGKILL, **popen: Any) -> subprocess.Popen[bytes]:
    """Popen in a new session. From the main thread on Linux, the kernel sends the child `on_parent_death`
    when we die, even by SIGKILL (PDEATHSIG): SIGKILL by default, SIGTERM for a child that must save first.
    Python children get PARENT_ENV so they can watch for our death themselves (any thread may start them).
    """
    env = dict(popen.pop("env", None) or os.environ)
    env[PARENT_ENV] = str(os.getpid())
    main = threading.current_thread() is threading.main_thread()
    preexec = _signal_on_parent_death(on_parent_death) if _PRCTL and main else None
    return subprocess.Popen(args, env=env, start_new_session=True, preexec_fn=preexec, **popen)


def _signal(target: subprocess.Popen[bytes] | int, sig: int) -> None:
    """Our own Popen: its whole process group (its pid is not reused while unreaped). A bare pid: that pid."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if isinstance(target, int):
            os.kill(target, sig)
        elif target.poll() is None:
            os.killpg(target.pid, sig)


def _running(target: subprocess.Popen[bytes] | int) -> bool:
    if isinstance(target, int):
        try:
            os.kill(target, 0)
        except PermissionError:  # someone else's: it exists
            pass
        except OSError:
            return False
        try:  # a zombie (someone else's child) is gone for our purposes
            return Path(f"/proc/{target}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
        except OSError:
            return True
    return target.poll() is None


def is_running(pid: int) -> bool:
    """Whether a process (not necessarily ours) is running; a zombie counts as gone."""
    return _running(pid)


def stop(targets: Iterable[subprocess.Popen[bytes] | int], grace: float = 0.5) -> None:
    """SIGTERM them all at once, wait up to `grace` in total, SIGKILL what is left, reap our own."""
    targets = [t for t in targets if t]
    for target in targets:
        _signal(target, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_running(t) for t in targets) and time.monotonic() < deadline:
        time.sleep(0.02)
    for target in targets:
        if _running(target):
            _signal(target, signal.SIGKILL)
    for target in targets:
        if not isinstance(target, int):
            with contextlib.suppress(subprocess.TimeoutExpired):
                target.wait(timeout=1)


def watch_parent(on_orphaned: Any = None, interval: float = 0.25) -> None:
    """In a child started by `start`: when the parent is gone, run `on_orphaned` (default: SIGTERM ourselves)."""
    parent = int(os.environ.get(PARENT_ENV) or 0)
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        (on_orphaned or (lambda: os.kill(os.getpid(), signal.SIGTERM)))()

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM while cleaning up (main thread only), so a second Ctrl-C cannot leak a process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


_PENDING: list[int] = []


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP (a closed terminal) mark an interrupt instead of raising wherever the
    main thread is: a KeyboardInterrupt inside an import or a held lock (logging's) deadlocks the other
    threads. `check_interrupt()` raises it at safe points. A second signal while one is pending raises at once."""

    def mark(signum: int, frame: object) -> None:
        if _PENDING:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        _PENDING.append(signum)  # no lock taken in a signal handler

    saved = {sig: signal.signal(sig, mark) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        _PENDING.clear()


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if a signal arrived under `deferred_interrupts` (a safe point to stop)."""
    if _PENDING:
        raise KeyboardInterrupt(signal.Signals(_PENDING[0]).name)
