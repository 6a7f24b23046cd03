"""The file a running local session (`chatft dev`, `chatft demo --keep`) leaves in its state folder, so
other `chatft` commands in another shell find it and use the same Azurite, ledger and state."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.local.procs import is_running
from shared.local.state import read_json, write_json

NAME = "session.json"


@dataclass(frozen=True)
class LocalSession:
    state_dir: Path
    pid: int
    settings: Mapping[str, str]


def write_session(state_dir: Path, settings: Mapping[str, str]) -> Path:
    path = state_dir / NAME
    write_json(path, {"pid": os.getpid(), "settings": dict(settings)})
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
            yield LocalSession(root, pid, {str(k): str(v) for k, v in settings.items()})
