"""The files a running local session (`chatft dev`, `chatft demo --keep`) keeps in its state folder: a lock
that makes it the folder's only session, and session.json, so other `chatft` commands (in another shell,
from any subfolder, as git finds .git) find it and use the same Azurite, ledger and state."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shared.local.procs import is_running
from shared.local.state import read_json, write_json

NAME = "session.json"
LOCK = "session.lock"
"""Held (flock) by the session's process for its whole life: the kernel lets it go when the process dies,
even by kill -9, so a crashed dev never blocks the next one."""
STATE = ".chatft"
"""The state folder's name in the project folder (LOCAL_STATE_DIR's default)."""


@dataclass(frozen=True)
class LocalSession:
    state_dir: Path
    pid: int
    settings: Mapping[str, str]
    address: str = ""
    """Where its host listens (http://127.0.0.1:7071), "" if it did not say."""


class SessionBusy(RuntimeError):
    """Another live session holds this state folder."""

    def __init__(self, state_dir: Path, pid: int | None, address: str) -> None:
        self.pid, self.address = pid, address
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"a chatft dev is already running for {state_dir} ({who}" + (f", {address}" if address else "") + "): "
            "use that one (commands in any shell find it), or stop it first; one dev session per state folder"
        )


class SessionLock:
    """This process's hold on a state folder (see LOCK); `release()` lets it go."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle: IO[str] | None = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor drops the flock
            self._handle = None


def hold(state_dir: Path, address: str) -> SessionLock:
    """Take the state folder for this process, or raise SessionBusy naming the session that has it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = (state_dir / LOCK).open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        try:
            holder = json.loads(handle.read() or "{}")
        except ValueError:  # its holder is writing it right now
            holder = {}
        handle.close()
        holder = holder if isinstance(holder, dict) else {}
        pid = holder.get("pid") if isinstance(holder.get("pid"), int) else None
        raise SessionBusy(state_dir, pid, str(holder.get("address") or "")) from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "address": address}))
    handle.flush()
    return SessionLock(handle)


def write_session(state_dir: Path, settings: Mapping[str, str], address: str = "") -> Path:
    path = state_dir / NAME
    write_json(path, {"pid": os.getpid(), "address": address, "settings": dict(settings)})
    return path


def remove_session(state_dir: Path) -> None:
    """Remove the file if it is this process's (a newer session may have replaced it)."""
    path = state_dir / NAME
    try:
        found = read_json(path, {})
    except (OSError, ValueError):
        return
    if isinstance(found, dict) and found.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Running, not a zombie: a killed dev not yet reaped by whoever started it serves nothing."""
    return is_running(pid)


def live_sessions(roots: Iterable[Path]) -> Iterator[LocalSession]:
    """Sessions whose process is still running, in the order of `roots`; stale or unreadable files skipped."""
    for root in roots:
        try:
            found = read_json(root / NAME, None)
        except (OSError, ValueError):  # unreadable or half-written by a crashed writer
            continue
        if not isinstance(found, dict):
            continue
        pid, settings = found.get("pid"), found.get("settings")
        if isinstance(pid, int) and pid > 0 and isinstance(settings, dict) and _alive(pid):
            address = str(found.get("address") or "")
            yield LocalSession(root, pid, {str(k): str(v) for k, v in settings.items()}, address)


def state_roots(folder: Path) -> list[Path]:
    """The state folders a session of `folder` may use: .chatft (dev), .chatft/demo, then .chatft/runs/*
    (`chatft demo --keep`), newest run first."""
    state = folder / STATE
    return [state, state / "demo", *sorted((state / "runs").glob("*"), reverse=True)]


def find_session(start: Path) -> tuple[LocalSession | None, list[Path]]:
    """The live session of `start` or its nearest parent that has one (as git finds .git), and the
    folders looked in."""
    looked: list[Path] = []
    for folder in (start, *start.parents):
        if not (folder / STATE).is_dir():
            continue
        looked.append(folder)
        for session in live_sessions(state_roots(folder)):
            return session, looked
    return None, looked
