"""The blob trigger's Event Grid source (the deployed default; Flex Consumption supports no other):
the app indexes it so, and `chatft dev` serves the blobs extension's webhook,
`POST /runtime/webhooks/blobs?functionName=Host.Functions.<name>`, so that path runs offline too."""

from __future__ import annotations

import hashlib
import importlib
import json
import urllib.error
import urllib.request

import azure.functions as func
import pytest

import functions.ingest
import shared.entry.app_wiring
from shared.local.host import LocalHost
from tests.chats import valid_file
from tests.hosting import find_function


def blob_created(container: str, name: str) -> dict:
    """A BlobCreated event as Event Grid delivers it (Event Grid schema)."""
    return {
        "topic": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
        "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": "e1",
        "eventTime": "2026-11-22T12:00:00Z",
        "data": {"api": "PutBlob", "url": f"https://acct.blob.core.windows.net/{container}/{name}"},
        "dataVersion": "",
        "metadataVersion": "1",
    }


def post(port: int, body: object, kind: str = "Notification", function: str = "Host.Functions.ingest_upload"):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/runtime/webhooks/blobs?functionName={function}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "aeg-event-type": kind},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def event_grid_app(monkeypatch):
    """The app indexed as in Azure: UPLOAD_TRIGGER_SOURCE unset, so the default."""
    monkeypatch.delenv("UPLOAD_TRIGGER_SOURCE", raising=False)
    module = importlib.reload(functions.ingest)
    app = func.FunctionApp()
    app.register_functions(module.bp)
    yield app
    monkeypatch.undo()
    importlib.reload(functions.ingest)


def test_the_deployed_default_is_the_event_grid_source(event_grid_app) -> None:
    [binding] = json.loads(find_function(event_grid_app, "ingest_upload").get_function_json())["bindings"]
    assert binding["source"] == "EventGrid"


def test_the_runner_serves_the_blobs_webhook(event_grid_app, storage_env, blob_service) -> None:
    shared.entry.app_wiring.reset()
    container = storage_env["UPLOAD_CONTAINER"]
    blob_service.create_container(container)
    data = valid_file(30)
    blob_service.get_blob_client(container, "team/chats.jsonl").upload_blob(data)
    lines: list[str] = []
    host = LocalHost(event_grid_app, port=0, say=lines.append).start()
    try:
        assert post(host.port, [blob_created(container, "x")], kind="SubscriptionValidation") == (
            400,
            {"error": "a SubscriptionValidation event needs data.validationCode (a string)"},
        )
        handshake = {**blob_created(container, "x"), "data": {"validationCode": "abc"}}
        assert post(host.port, [handshake], kind="SubscriptionValidation") == (200, {"validationResponse": "abc"})
        elsewhere = blob_created("another-container", "team/chats.jsonl")
        assert post(host.port, [elsewhere, blob_created(container, "team/chats.jsonl")]) == (200, {"invoked": 1})
        assert post(host.port, [blob_created(container, "x")], function="Host.Functions.nope")[0] == 404
    finally:
        host.stop()
        shared.entry.app_wiring.reset()
    sha = hashlib.sha256(data).hexdigest()
    report = json.loads(
        blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"team-chats/{sha[:16]}/report.json")
        .download_blob()
        .readall()
    )
    assert report["valid"] is True and report["conversations"] == 30
    assert any(f"{container}/team/chats.jsonl → ingest_upload ok" in line for line in lines), lines
