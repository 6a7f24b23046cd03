"""A `chatft dev` session in this process, over the test run's Azurite with the local backend, and a wait for
what it does: the setup of the offline end-to-end tests (tests/test_local_loop.py, tests/test_guards_local.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shared.entry.offline.dev_session import DevSession

T = TypeVar("T")


def wait(what: str, check: Callable[[], T], timeout: float = 60.0) -> T:
    """`check()`'s first truthy value, polled every 0.1 s; an AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out: {what}")


def local_settings(tmp_path: Path, name: str, **more: str) -> dict[str, str]:
    """The session's settings: the local backend, its state under `tmp_path`, containers and a ledger table of its
    own (named after `name`, so tests never share rows), the deploy reconciler every second, then `more`."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "ML_BACKEND": "local",
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
        "UPLOAD_CONTAINER": f"{name}-up-{suffix}",
        "PREPARED_CONTAINER": f"{name}-prep-{suffix}",
        "LEDGER_TABLE": f"{name}{suffix}",
        "DEPLOY_RECONCILE_SCHEDULE": "*/1 * * * * *",
        **more,
    }


@contextmanager
def running(
    azurite: Any, monkeypatch: pytest.MonkeyPatch, overrides: Mapping[str, str]
) -> Iterator[tuple[DevSession, list[str]]]:
    """(the session, the lines it prints) with `overrides`, on the test run's Azurite, polling blobs every 0.2 s."""
    monkeypatch.setenv("AZURITE_CONNECTION_STRING", azurite.connection_string)
    lines: list[str] = []
    with DevSession(overrides=overrides, port=0, poll_seconds=0.2, say=lines.append) as dev:
        yield dev, lines
