"""The local backend over the test run's Azurite, set up as the function app reads it, with no `chatft dev` around
it: the setup of tests that drive the flows against it directly (tests/test_endpoint_ownership.py,
tests/test_evaluation_flow.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import shared.entry.app_wiring

if TYPE_CHECKING:
    from shared.azure.table_ledger import TableLedger
    from shared.local.backend import LocalWorkspace
    from shared.settings import Settings


@dataclass(frozen=True)
class LocalBackend:
    settings: Settings
    workspace: LocalWorkspace
    ledger: TableLedger
    suffix: str
    """Ten hex digits naming this backend's table and containers: a name of its own for anything else it makes."""


@contextmanager
def local_backend(azurite: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Iterator[LocalBackend]:
    """ML_BACKEND=local with its state under `tmp_path`, a ledger table (`name` and the suffix) and containers of
    its own, in the environment too (shared.entry.app_wiring is reset, so its prepared_store() and the rest agree).
    The workspace's processes are stopped afterwards, and app_wiring forgets these settings."""
    from shared.azure.table_ledger import TableLedger, table_client
    from shared.local.backend import LocalWorkspace
    from shared.settings import Settings

    suffix = uuid.uuid4().hex[:10]
    values = {
        "ML_BACKEND": "local",
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
        "CHATFT_STORAGE": azurite.connection_string,
        "LEDGER_TABLE": f"{name}{suffix}",
        "UPLOAD_CONTAINER": f"up-{suffix}",
        "PREPARED_CONTAINER": f"prep-{suffix}",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    shared.entry.app_wiring.reset()
    settings = Settings.from_env(values)
    workspace = LocalWorkspace(settings)
    try:
        yield LocalBackend(settings, workspace, TableLedger(table_client(settings.ledger_table)), suffix)
    finally:
        workspace.shutdown()
        shared.entry.app_wiring.reset()
