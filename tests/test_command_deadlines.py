"""A command never waits blindly on storage: against a frozen Azurite (SIGSTOP: it accepts connections and
never answers) `chatft status` and `chatft upload` fail within seconds, with one line.

The SDKs' own bounds are minutes: azure-storage-blob waits 20 s to connect and 60 s per read
(azure/storage/blob/_shared/constants.py CONNECTION_TIMEOUT, READ_TIMEOUT), retrying each attempt
(_shared/policies.py StorageRetryPolicy: no total deadline); azure-data-tables uses azure-core's defaults,
300 s each (azure/core/configuration.py ConnectionConfiguration) and 10 retries (policies/_retry.py).
The commands' bounds are shared.azure.storage.command_blob_options / command_table_options.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

import shared.entry.app_wiring
from shared.azure.storage import DEADLINE_SECONDS, READ_SECONDS, command_table_options
from shared.azure.table_ledger import table_client
from shared.domain.ledger import UploadKey
from shared.entry.cli.app import app
from shared.local.azurite import Azurite, start_or_reuse
from tests.test_upload_command import chats, settings_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="freezes a process with SIGSTOP"),
]
runner = CliRunner()
BOUND = 15.0
"""What a user waits at most before a frozen storage is named (the read timeout, and the commands' start)."""


@pytest.fixture
def frozen(monkeypatch) -> Iterator[Azurite]:
    """A private Azurite (the suite's own must keep answering), frozen once the test has set it up."""
    azurite = start_or_reuse(reuse=False)
    try:
        yield azurite
    finally:
        os.kill(azurite.process.pid, signal.SIGCONT)
        azurite.stop()


def freeze(azurite: Azurite) -> None:
    os.kill(azurite.process.pid, signal.SIGSTOP)


@pytest.fixture
def target(frozen, tmp_path, monkeypatch):
    env = {"CHATFT_STORAGE": frozen.connection_string, "UPLOAD_CONTAINER": "uploads", "PREPARED_CONTAINER": "prepared"}
    return settings_for({**env, "ML_BACKEND": "none"}, tmp_path, monkeypatch)


def timed(*args: str):
    began = time.monotonic()
    result = runner.invoke(app, list(args), env={"COLUMNS": "300"})
    return result, time.monotonic() - began


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("using ")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_status_against_a_frozen_storage_fails_in_seconds_with_one_line(frozen, target) -> None:
    assert runner.invoke(app, ["status", "--settings", str(target)]).exit_code == 0  # it answers, then freezes
    freeze(frozen)
    result, elapsed = timed("status", "--settings", str(target))
    assert result.exit_code == 2 and elapsed < BOUND, (elapsed, result.output)
    assert "storage" in one_line(result) and "timed out" in result.stderr.lower()


def test_upload_against_a_frozen_storage_fails_in_seconds_with_one_line(frozen, target, tmp_path) -> None:
    freeze(frozen)
    result, elapsed = timed("upload", str(chats(tmp_path)), "--settings", str(target))
    assert result.exit_code == 2 and elapsed < BOUND, (elapsed, result.output)
    assert "storage" in one_line(result)


def test_the_commands_ledger_gives_up_on_a_frozen_table_within_the_read_timeout(frozen, monkeypatch) -> None:
    """The ledger `chatft status` and `--follow` read (shared.entry.app_wiring.ledger(create=False)) is bounded too:
    a read that timed out is not sent again (`retry_read=0`; azure-core checks `timeout` only between tries)."""
    from azure.core.exceptions import ServiceResponseError

    monkeypatch.setenv("CHATFT_STORAGE", frozen.connection_string)
    monkeypatch.setenv("LEDGER_TABLE", "frozenledger")
    shared.entry.app_wiring.reset()
    table_client("frozenledger")  # created while it answers
    freeze(frozen)
    ledger = shared.entry.app_wiring.ledger(create=False)
    began = time.monotonic()
    with pytest.raises(ServiceResponseError):
        ledger.get(UploadKey("chats", "0" * 64))
    assert time.monotonic() - began < READ_SECONDS + 2
    assert command_table_options()["timeout"] == DEADLINE_SECONDS
    shared.entry.app_wiring.reset()
