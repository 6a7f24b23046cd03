"""A poisoned upload is `failed`, not "waiting for the ingest function": `chatft status` shows the last
error and `chatft upload --follow` ends with exit 1 instead of waiting out its six hours.

How the host poisons a blob (the Event Grid source we deploy): the blobs webhook enqueues a
BlobTriggerMessage on the host's blob-trigger queue (Azure/azure-sdk-for-net
sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Blobs/src/Config/BlobsExtensionConfigProvider.cs,
ProcessEventsAsync); the shared queue listener runs the function for it and, once the message was dequeued
`poisonBlobThreshold` times (host.json extensions.blobs, default 5: it maps to the queue's MaxDequeueCount),
copies it to `webjobs-blobtrigger-poison` (src/Listeners/SharedBlobQueueListenerFactory.cs;
https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-blob-trigger#poison-blobs).
The local runner counts failures per blob and ETag in its receipts the same way (shared/local/host.py).
Every failed delivery leaves one note at <dataset>/_failed/<time>.json (shared/flows/ingest.py): that is
what status reads, because a command cannot search a queue (Peek Messages returns at most 32).

The failure here is a real storage refusal: a lease held on the prepared train.jsonl makes every write of
it fail with 412 LeaseIdMissing (https://learn.microsoft.com/rest/api/storageservices/lease-blob: a leased
blob's writes need the lease ID), so each delivery fails after validating, before any report exists.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from typer.testing import CliRunner

import function_app
import shared.entry.app_wiring
from shared.domain.naming import prepared_prefix
from shared.domain.upload_stage import POISON_AFTER
from shared.entry.cli.app import app
from tests.chats import valid_file
from tests.hosting import invoke_blob_trigger

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture
def target(storage_env, tmp_path, monkeypatch) -> Path:
    shared.entry.app_wiring.reset()
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": storage_env}))
    return path


def _uploaded_with_prepared_file_leased(target: Path, tmp_path: Path, blob_service, storage_env) -> Path:
    data = valid_file(30)
    path = tmp_path / "chats.jsonl"
    path.write_bytes(data)
    result = runner.invoke(app, ["upload", str(path), "--settings", str(target)])
    assert result.exit_code == 0, result.output
    prepared = blob_service.get_container_client(storage_env["PREPARED_CONTAINER"])
    if not prepared.exists():
        prepared.create_container()
    train = prepared.get_blob_client(f"{prepared_prefix('chats.jsonl', hashlib.sha256(data).hexdigest())}/train.jsonl")
    train.upload_blob(b"", overwrite=True)
    train.acquire_lease(lease_duration=-1)  # someone else's infinite lease: every write of it is refused
    return path


def _deliver(times: int) -> None:
    """The host's deliveries of the upload, each failing as the real ingest fails."""
    for _ in range(times):
        with pytest.raises(HttpResponseError):
            invoke_blob_trigger(function_app.app, "ingest_upload", "chats.jsonl")


def _status(target: Path) -> dict:
    result = runner.invoke(app, ["status", "chats.jsonl", "--json", "--settings", str(target)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_poisoned_upload_is_failed_with_the_last_error(target, tmp_path, blob_service, storage_env) -> None:
    _uploaded_with_prepared_file_leased(target, tmp_path, blob_service, storage_env)
    _deliver(POISON_AFTER)
    doc = _status(target)
    assert doc["stage"] == "failed", doc
    assert "LeaseIdMissing" in doc["error"] or "lease" in doc["error"].lower(), doc
    assert f"{POISON_AFTER} times" in doc["detail"] and "webjobs-blobtrigger-poison" in doc["detail"]
    assert "--overwrite" in doc["detail"], "the fix: upload it again once the cause is fixed"
    table = runner.invoke(app, ["status", "--settings", str(target)])
    assert table.exit_code == 0 and "failed" in table.stdout and "waiting" not in table.stdout


def test_follow_ends_with_exit_1_on_a_poisoned_upload(target, tmp_path, blob_service, storage_env) -> None:
    path = _uploaded_with_prepared_file_leased(target, tmp_path, blob_service, storage_env)
    _deliver(POISON_AFTER)
    started = time.monotonic()
    result = runner.invoke(
        app,
        ["upload", str(path), "--follow", "--interval", "0.1", "--timeout", "10s", "--settings", str(target)],
    )
    assert result.exit_code == 1, result.output
    assert time.monotonic() - started < 8
    last = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert last and "failed" in last[-1] and f"{POISON_AFTER} times" in last[-1]


def test_an_upload_still_being_retried_says_so_and_waits(target, tmp_path, blob_service, storage_env) -> None:
    _uploaded_with_prepared_file_leased(target, tmp_path, blob_service, storage_env)
    _deliver(2)
    doc = _status(target)
    assert doc["stage"] == "uploaded", doc
    assert f"failed 2 of {POISON_AFTER} times" in doc["detail"] and doc["error"], doc


def test_the_poison_threshold_is_the_one_the_host_and_the_local_runner_use() -> None:
    from shared.local.host import POISON_AFTER as LOCAL

    blobs = json.loads((ROOT / "host.json").read_text())["extensions"]["blobs"]
    assert blobs.get("poisonBlobThreshold", 5) == POISON_AFTER == LOCAL
