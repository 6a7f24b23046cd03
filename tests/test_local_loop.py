"""End to end, offline: the runner hosts function_app over Azurite with the local backend.

drop JSONL -> validated -> fine-tune job -> job-finished event -> model registered ->
endpoint live and answering -> idle endpoint removed; duplicates change nothing; nothing is
left running afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

import shared.entry.app_wiring
from shared.domain.ledger import Status, UploadKey
from shared.entry.offline.dev_session import DevSession
from shared.local.backend import _CHILDREN
from shared.local.events import RUN_COMPLETED, post_events, run_event
from tests.dev_session_setup import local_settings, running, wait

ROOT = Path(__file__).resolve().parent.parent
DATA = b"".join((ROOT / "samples" / "chat_sample.jsonl").read_bytes().splitlines(keepends=True)[:600])
SHA = hashlib.sha256(DATA).hexdigest()
KEY = UploadKey("loop-chats", SHA)


@pytest.fixture
def session(azurite, tmp_path, monkeypatch):
    overrides = local_settings(tmp_path, "loop", JANITOR_SCHEDULE="*/1 * * * * *", JANITOR_IDLE_MINUTES="0.1")
    before = {key: os.environ.get(key) for key in overrides}
    with running(azurite, monkeypatch, overrides) as (dev, lines):
        yield dev, lines
    assert {key: os.environ.get(key) for key in overrides} == before  # close() restored the environment


def ledger_status() -> Status | None:
    entry = shared.entry.app_wiring.ledger().get(KEY)
    return entry.status if entry else None


def test_the_whole_loop_offline(session) -> None:
    dev, lines = session
    settings = shared.entry.app_wiring.settings()
    from shared.azure.storage import blob_service, ensure_container

    uploads = blob_service().get_container_client(settings.upload_container)
    ensure_container(uploads)
    uploads.upload_blob("loop/chats.jsonl", DATA)
    wait("submitted", lambda: ledger_status() in (Status.SUBMITTED, Status.REGISTERED, Status.DEPLOYING, Status.LIVE))
    entry = shared.entry.app_wiring.ledger().get(KEY)
    job = wait(
        "job finished", lambda: (j := dev.workspace.job_record(entry.job_name)) and j["status"] == "Completed" and j
    )
    assert job["metrics"]["token_f1"] > job["metrics"]["baseline_token_f1"] + 0.3
    assert (Path(settings.local_state_dir) / "jobs" / entry.job_name / "outputs" / "trained_model" / "MLmodel").exists()
    wait("live", lambda: ledger_status() is Status.LIVE)
    entry = shared.entry.app_wiring.ledger().get(KEY)
    model_dir = Path(settings.local_state_dir) / "models" / entry.deploy["model_name"] / entry.deploy["model_version"]
    assert (model_dir / "model" / "MLmodel").exists() and json.loads((model_dir / "model.json").read_text())["tags"][
        "chatft_job"
    ] == entry.job_name
    assert entry.deploy["smoke"]["answer"]
    # duplicates: the same bytes again (a new ETag), and the parent's RunCompleted again
    uploads.upload_blob("loop/chats.jsonl", DATA, overwrite=True)
    parent = run_event(
        RUN_COMPLETED,
        workspace_id=settings.workspace_resource_id,
        experiment=settings.experiment_name,
        run_id=entry.job_name,
        run_type="azureml.PipelineRun",
        tags=job["tags"],
    )
    assert post_events(settings.local_event_webhook, [parent]) == 200
    time.sleep(1.5)
    assert len(list((Path(settings.local_state_dir) / "jobs").iterdir())) == 1
    assert [p.name for p in (Path(settings.local_state_dir) / "models" / entry.deploy["model_name"]).iterdir()] == [
        entry.deploy["model_version"]
    ]
    assert sum(1 for line in lines if line.startswith("blob") and "ok" in line) == 2  # both uploads ran, one job
    # the janitor removes the idle endpoint
    wait("retired", lambda: ledger_status() is Status.RETIRED, timeout=30)
    assert dev.workspace.list_endpoints() == []
    kinds = {line.split()[0] for line in lines}
    # the timers ran (the row went live and was retired by them); a tick with nothing to warn about prints no line
    assert {"blob", "event"} <= kinds
    assert any(
        "StepRun" in line or "_chat_completion_finetune" in line for line in lines
    )  # the child step's events arrived too


def test_the_webhook_speaks_event_grid(session) -> None:
    dev, _ = session
    url = f"http://127.0.0.1:{dev.port}/runtime/webhooks/EventGrid?functionName=job_events"
    handshake = [
        {
            "id": "1",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "data": {"validationCode": "abc-123"},
        }
    ]
    request = urllib.request.Request(
        url,
        data=json.dumps(handshake).encode(),
        method="POST",
        headers={"aeg-event-type": "SubscriptionValidation", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == {"validationResponse": "abc-123"}
    bad = urllib.request.Request(
        url.replace("job_events", "nope"), data=b"[]", method="POST", headers={"aeg-event-type": "Notification"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bad, timeout=5)
    assert caught.value.code == 404


def test_nothing_survives_the_session(azurite, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AZURITE_CONNECTION_STRING", azurite.connection_string)
    overrides = {
        "ML_BACKEND": "local",
        "LOCAL_STATE_DIR": str(tmp_path / "s"),
        "LEDGER_TABLE": f"t{uuid.uuid4().hex[:8]}",
    }
    with DevSession(overrides=overrides, port=0, say=lambda line: None) as dev:
        dev.workspace.begin_create_endpoint(name="ep-x", description="", tags={})
        wait("server up", lambda: dev.workspace.get_endpoint("ep-x").provisioning_state == "Succeeded", timeout=20)
        pids = list(_CHILDREN)
        threads = dev.host._threads
    assert pids and _CHILDREN == {}
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not any(t.is_alive() for t in threads)


def test_a_rejected_upload_says_so_in_the_host_line(session) -> None:
    _, lines = session
    settings = shared.entry.app_wiring.settings()
    from shared.azure.storage import blob_service, ensure_container

    uploads = blob_service().get_container_client(settings.upload_container)
    ensure_container(uploads)
    uploads.upload_blob("loop/bad.jsonl", b'{"messages": 5}\nnot json\n')
    line = wait("the host line", lambda: next((x for x in lines if "loop/bad.jsonl →" in x), None), timeout=30)
    assert f"→ ingest_upload ingest.rejected (report {settings.prepared_container}/" in line
    assert "/report." in line.split("(report ")[1] and " ok " not in line


def test_dev_says_where_to_upload(session, azurite) -> None:
    dev, _ = session
    text = "\n".join(dev.describe())
    assert f"storage   Azurite (reused): {azurite.connection_string}" in text
    assert f"container {shared.entry.app_wiring.settings().upload_container}" in text
    assert f'az storage blob upload --connection-string "{azurite.connection_string}"' in text
    assert f"POST http://127.0.0.1:{dev.port}/runtime/webhooks/EventGrid?functionName=job_events" in text
