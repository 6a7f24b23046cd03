"""Upload -> ingest function -> exactly one fine-tuning submission, on Azurite with a fake Azure ML.

Storage and the ledger are real (Azurite); only the MLClient operations are fakes, and they
return real azure.ai.ml entities.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

import function_app
import shared.entry.app_wiring
from shared.azure.azureml.client import AzureMLWorkspace
from shared.domain.ledger import Status, UploadKey
from shared.domain.naming import job_name
from tests.chats import valid_file
from tests.concurrency import run_concurrently
from tests.fake_aml import PHI3_TAGS, model
from tests.hosting import blob_client_for_trigger, find_function, invoke_blob_trigger

LIVE_TAGS = {k: v for k, v in PHI3_TAGS.items() if not k.startswith("Finetune")}
DATA = valid_file(60)
SHA = hashlib.sha256(DATA).hexdigest()


def upload(blob_service, storage_env, name: str = "chats.jsonl", data: bytes = DATA) -> None:
    blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], name).upload_blob(data, overwrite=True)


def trigger(name: str = "chats.jsonl"):
    return invoke_blob_trigger(function_app.app, "ingest_upload", name)


def report(blob_service, storage_env, name: str = "chats") -> dict:
    blob = blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"{name}/{SHA[:16]}/report.json")
    return json.loads(blob.download_blob().readall())


def ledger_row():
    return shared.entry.app_wiring.ledger().get(UploadKey("chats", SHA))


def test_an_upload_submits_exactly_one_job(aml, blob_service, storage_env) -> None:
    workspace, _ = aml
    upload(blob_service, storage_env)
    trigger()
    [call] = workspace.jobs.created
    job = call["job"]
    assert job.name == job_name("chats.jsonl", SHA, 1)
    assert call["tags"]["chatft_managed"] == "true" and call["tags"]["chatft_upload"] == SHA
    assert call["tags"]["chatft_source"] == f"{storage_env['UPLOAD_CONTAINER']}/chats.jsonl"
    assert all("." not in key for key in call["tags"])
    [step] = job.jobs.values()
    assert (
        step.inputs["train_file_path"]._data.path
        == f"azureml://datastores/chatft_prepared/paths/chats/{SHA[:16]}/train.jsonl"
    )
    row = ledger_row()
    assert row.status is Status.SUBMITTED and row.job_name == job.name and row.attempt == 1
    submission = report(blob_service, storage_env)["submission"]
    assert submission["status"] == "submitted" and submission["job"] == job.name
    md = (
        blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"chats/{SHA[:16]}/report.md")
        .download_blob()
        .readall()
        .decode()
    )
    assert "## Fine-tuning" in md and job.name in md


def test_repeated_trigger_and_reupload_of_the_same_bytes_submit_once(aml, blob_service, storage_env) -> None:
    workspace, _ = aml
    upload(blob_service, storage_env)
    trigger()
    trigger()  # at-least-once redelivery
    upload(blob_service, storage_env)  # identical bytes, new ETag
    trigger()
    assert len(workspace.jobs.created) == 1
    submission = report(blob_service, storage_env)["submission"]
    assert submission["status"] == "submitted" and "already submitted as job" in submission["repeated_upload"]


def test_two_racing_triggers_submit_once(aml, blob_service, storage_env) -> None:
    workspace, _ = aml
    upload(blob_service, storage_env)
    function = find_function(function_app.app, "ingest_upload")
    handler = function.get_user_function()
    clients = [blob_client_for_trigger(function, "chats.jsonl") for _ in range(2)]
    _, errors = run_concurrently([lambda c=c: handler(c) for c in clients])
    assert errors == []
    assert len(workspace.jobs.created) == 1
    assert ledger_row().status is Status.SUBMITTED


def test_permanent_aml_failure_is_recorded_and_reported_not_raised(aml, blob_service, storage_env) -> None:
    workspace, _ = aml
    quota = HttpResponseError(message="QuotaExceeded: not enough GPU quota for Standard_NC24ads_A100_v4")
    quota.status_code = 400
    workspace.jobs.fail_with.append(quota)
    upload(blob_service, storage_env)
    trigger()  # does not raise: a retry cannot fix quota
    row = ledger_row()
    assert row.status is Status.FAILED and "QuotaExceeded" in row.error
    submission = report(blob_service, storage_env)["submission"]
    assert submission["status"] == "failed" and "QuotaExceeded" in submission["error"]
    trigger()  # the same delivery again changes nothing
    assert workspace.jobs.created == []
    upload(blob_service, storage_env)  # the user fixed the quota and uploads the same bytes again
    trigger()
    [call] = workspace.jobs.created
    assert call["job"].name == job_name("chats.jsonl", SHA, 2)


def test_transient_failure_is_raised_for_the_host_to_retry(aml, blob_service, storage_env) -> None:
    workspace, _ = aml
    workspace.jobs.fail_with.append(ServiceRequestError("connection reset"))
    upload(blob_service, storage_env)
    with pytest.raises(ServiceRequestError):
        trigger()
    assert ledger_row().status is Status.RETRYABLE
    assert report(blob_service, storage_env)["submission"]["status"] == "retrying"
    trigger()  # the host's retry
    assert len(workspace.jobs.created) == 1 and ledger_row().status is Status.SUBMITTED


def test_failed_preflight_writes_a_report_and_submits_nothing(aml, blob_service, storage_env) -> None:
    workspace, registry = aml
    name = (
        shared.entry.app_wiring.settings().finetune_model
    )  # the configured model, with Phi-3's tags: retired 2025-08-30
    registry.models._models[name] = model(name, tags=PHI3_TAGS)
    upload(blob_service, storage_env)
    trigger()
    assert workspace.jobs.created == []
    submission = report(blob_service, storage_env)["submission"]
    assert submission["status"] == "failed" and submission["setting"] == "FINETUNE_MODEL"
    assert "retired on 2025-08-30" in submission["error"]
    assert ledger_row().status is Status.FAILED


def test_a_crash_after_the_claim_is_retried_after_the_timeout(aml, blob_service, storage_env) -> None:
    workspace, _ = aml
    ledger = shared.entry.app_wiring.ledger()
    now = datetime.now(timezone.utc)
    crashed = ledger.claim(
        UploadKey("chats", SHA), upload_etag='"0x1"', source="s", cid="c", now=now, stale_after=timedelta(minutes=10)
    )
    assert crashed.acquired
    upload(blob_service, storage_env)
    trigger()  # the claim is fresh: another worker may still be submitting
    assert workspace.jobs.created == []
    # Age the crashed claim past the timeout, as time would.
    key = UploadKey("chats", SHA)
    table = ledger._table
    entity = table.get_entity(key.dataset, key.sha256)
    entity["claimed_at"] = (now - timedelta(hours=1)).isoformat()
    table.update_entity(entity)
    trigger()
    assert len(workspace.jobs.created) == 1 and ledger_row().status is Status.SUBMITTED


def test_a_crash_after_submitting_does_not_submit_twice(aml, blob_service, storage_env) -> None:
    workspace, _ = aml
    upload(blob_service, storage_env)
    trigger()
    [call] = workspace.jobs.created
    # Pretend the worker died before recording: the row is a stale claim again.
    key = UploadKey("chats", SHA)
    table = shared.entry.app_wiring.ledger()._table
    entity = table.get_entity(key.dataset, key.sha256)
    entity.update(status="claimed", claimed_at=(datetime.now(timezone.utc) - timedelta(hours=1)).isoformat())
    table.update_entity(entity)
    upload(blob_service, storage_env)
    trigger()
    assert workspace.jobs.created == [call]
    assert ledger_row().status is Status.SUBMITTED
    assert report(blob_service, storage_env)["submission"]["already_existed"] is True


def test_missing_workspace_settings_are_reported_not_raised(aml, blob_service, storage_env, monkeypatch) -> None:
    workspace, _ = aml
    monkeypatch.delenv("AML_WORKSPACE")
    shared.entry.app_wiring.settings.cache_clear()
    upload(blob_service, storage_env)
    trigger()
    assert workspace.jobs.created == []
    submission = report(blob_service, storage_env)["submission"]
    assert submission["status"] == "failed" and "AML_WORKSPACE: missing" in submission["error"]
    assert ledger_row().status is Status.FAILED


def test_an_empty_split_is_not_passed_to_the_job(aml, blob_service, storage_env, monkeypatch) -> None:
    workspace, _ = aml
    monkeypatch.setenv("SPLIT_FRACTIONS", "0.9,0.1,0")
    shared.entry.app_wiring.settings.cache_clear()
    upload(blob_service, storage_env)
    trigger()
    [call] = workspace.jobs.created
    [step] = call["job"].jobs.values()
    assert step.inputs["validation_file_path"]._data.path.endswith("/validation.jsonl")
    assert step.inputs["test_file_path"]._data is None


def _age_row(field: str, hours: float = 1) -> None:
    table = shared.entry.app_wiring.ledger()._table
    entity = table.get_entity("chats", SHA)
    entity[field] = (datetime.now(timezone.utc) - timedelta(hours=hours)).isoformat()
    table.update_entity(entity)


def test_the_reconciler_resubmits_a_claim_whose_worker_died_without_a_redelivery(
    aml, blob_service, storage_env
) -> None:
    from tests.deploy_flow import tick

    workspace, _ = aml
    upload(blob_service, storage_env)
    with pytest.MonkeyPatch.context() as patch:  # the worker dies right after claiming
        patch.setattr(
            AzureMLWorkspace, "submit_finetune", lambda self, request: (_ for _ in ()).throw(SystemExit("killed"))
        )
        with pytest.raises(SystemExit):
            trigger()
    assert ledger_row().status is Status.CLAIMED and workspace.jobs.created == []
    assert report(blob_service, storage_env)["submission"]["status"] == "submitting"
    tick()  # the claim is fresh: nothing yet
    assert workspace.jobs.created == []
    _age_row("claimed_at")
    _age_row("updated_at")
    tick()
    [call] = workspace.jobs.created
    assert call["job"].name == job_name("chats.jsonl", SHA, 1)
    assert next(iter(call["job"].jobs.values())).inputs["test_file_path"]._data.path.endswith("/test.jsonl")
    assert ledger_row().status is Status.SUBMITTED
    assert report(blob_service, storage_env)["submission"]["status"] == "submitted"
    tick()
    assert len(workspace.jobs.created) == 1


def test_the_reconciler_retries_an_upload_left_retryable_after_an_outage(aml, blob_service, storage_env) -> None:
    from tests.deploy_flow import tick

    workspace, _ = aml
    workspace.jobs.fail_with.extend([ServiceRequestError("outage")] * 5)
    upload(blob_service, storage_env)
    for _ in range(5):  # the host's retries, then the blob is poisoned
        with pytest.raises(ServiceRequestError):
            trigger()
    assert ledger_row().status is Status.RETRYABLE
    _age_row("updated_at")
    tick()
    assert len(workspace.jobs.created) == 1 and ledger_row().status is Status.SUBMITTED


def _report_md(blob_service, storage_env) -> tuple[str, int]:
    blob = blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"chats/{SHA[:16]}/report.md")
    return blob.download_blob().readall().decode(), int(blob.get_blob_properties().metadata["revision"])


@pytest.mark.parametrize("deliveries", [10])
def test_concurrent_deliveries_never_raise_and_the_report_converges_to_the_ledger(
    aml, blob_service, storage_env, deliveries: int
) -> None:
    """Was: 1-4 of 10 concurrent deliveries raised RuntimeError ("kept changing while being
    updated"), and a loser's "claimed" text could stay in report.md while the ledger said submitted."""
    workspace, _ = aml
    upload(blob_service, storage_env)
    function = find_function(function_app.app, "ingest_upload")
    handler = function.get_user_function()
    clients = [blob_client_for_trigger(function, "chats.jsonl") for _ in range(deliveries)]
    _, errors = run_concurrently([lambda c=c: handler(c) for c in clients])
    assert errors == []
    assert len(workspace.jobs.created) == 1
    row = ledger_row()
    assert row.status is Status.SUBMITTED
    doc = report(blob_service, storage_env)
    assert doc["submission"]["status"] == "submitted" and doc["submission"]["job"] == row.job_name
    assert doc["submission"].get("parameters"), "the submitting worker's details are kept"
    md, md_revision = _report_md(blob_service, storage_env)
    assert md_revision == doc["revision"], "report.md renders the last report.json"
    assert row.job_name in md and "claimed" not in md


def test_the_reconciler_repairs_a_report_left_behind_by_a_dead_writer(aml, blob_service, storage_env) -> None:
    from tests.deploy_flow import tick

    upload(blob_service, storage_env)
    trigger()
    row = ledger_row()
    # The submitting worker recorded the job in the ledger and died before its last report write.
    stale = {**report(blob_service, storage_env), "submission": {"status": "submitting"}}
    blob = blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"chats/{SHA[:16]}/report.json")
    blob.upload_blob(json.dumps(stale), overwrite=True)
    tick()
    doc = report(blob_service, storage_env)
    assert doc["submission"]["status"] == "submitted" and doc["submission"]["job"] == row.job_name
    md, md_revision = _report_md(blob_service, storage_env)
    assert md_revision == doc["revision"] and row.job_name in md


def test_report_writes_never_raise_under_contention(aml, blob_service, storage_env) -> None:
    """Twenty writers changing one report at once: all return, and every change is kept."""
    from shared.flows.reports import update_report

    upload(blob_service, storage_env)
    trigger()
    store = shared.entry.app_wiring.prepared_store()
    prefix = f"chats/{SHA[:16]}"
    _, errors = run_concurrently(
        [lambda i=i: update_report(store, prefix, f"note_{i}", {"status": f"n{i}"}) for i in range(20)]
    )
    assert errors == []
    doc = report(blob_service, storage_env)
    assert {f"note_{i}" for i in range(20)} <= doc.keys()
    assert _report_md(blob_service, storage_env)[1] == doc["revision"]


# --- the same bytes under other names: one claim per SHA-256 ---

COPIES = [f"copy-{i}.jsonl" for i in range(5)]


def test_the_same_bytes_under_five_names_at_once_train_once(aml, blob_service, storage_env, caplog) -> None:
    """Was: five blobs of one file under five names (`az storage blob upload`, the portal) delivered at once made
    five ledger rows (the ledger is keyed by dataset + SHA-256) and five jobs. Ingest claims the bytes by their
    SHA-256 alone before submitting (a blob created with If-None-Match: *: azure/storage/blob/_upload_helpers.py
    upload_block_blob sends it for overwrite=False; a second create is 409, ResourceExistsError), so one copy
    trains and the four others are reported "not submitted", pointing at it; no upload is touched."""
    workspace, _ = aml
    for name in COPIES:
        upload(blob_service, storage_env, name)
    container = blob_service.get_container_client(storage_env["UPLOAD_CONTAINER"])
    before = {b.name: b.etag for b in container.list_blobs()}
    function = find_function(function_app.app, "ingest_upload")
    handler = function.get_user_function()
    clients = [blob_client_for_trigger(function, name) for name in COPIES]
    with caplog.at_level(logging.INFO, logger="chatft"):
        _, errors = run_concurrently([lambda c=c: handler(c) for c in clients])
    assert errors == []
    [call] = workspace.jobs.created
    first = call["tags"]["chatft_source"].split("/", 1)[1]
    submissions = {
        name: report(blob_service, storage_env, name.removesuffix(".jsonl"))["submission"] for name in COPIES
    }
    assert submissions[first]["status"] == "submitted"
    for name in set(COPIES) - {first}:
        refused = submissions[name]
        assert refused["status"] == "not submitted", refused
        assert refused["duplicate_of"] == f"{storage_env['UPLOAD_CONTAINER']}/{first}"
        assert first in refused["reason"] and f"--name {first} --overwrite" in refused["reason"]
    duplicates = [r.getMessage() for r in caplog.records if r.getMessage().startswith("chatft ingest.duplicate ")]
    assert len(duplicates) == 4 and all(first in m for m in duplicates)
    assert {b.name: b.etag for b in container.list_blobs()} == before, "the user's blobs are never touched"


def test_a_copy_is_refused_until_the_first_is_gone(aml, blob_service, storage_env) -> None:
    """Later, too: a copy under another name points at the first and trains nothing, while the first blob holds
    the bytes. Deleting the first lets the copy's next upload train (a claim whose blob is gone holds nothing)."""
    workspace, _ = aml
    upload(blob_service, storage_env, "first.jsonl")
    trigger("first.jsonl")
    upload(blob_service, storage_env, "copy.jsonl")
    assert trigger("copy.jsonl") is None
    assert len(workspace.jobs.created) == 1
    refused = report(blob_service, storage_env, "copy")["submission"]
    assert refused["status"] == "not submitted" and "uploaded as first.jsonl" in refused["reason"]
    blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "first.jsonl").delete_blob()
    upload(blob_service, storage_env, "copy.jsonl")  # uploaded again: a new ETag, a new delivery
    trigger("copy.jsonl")
    assert [c["tags"]["chatft_source"].split("/", 1)[1] for c in workspace.jobs.created] == [
        "first.jsonl",
        "copy.jsonl",
    ]
    assert report(blob_service, storage_env, "copy")["submission"]["status"] == "submitted"


@pytest.mark.parametrize(("idle_minutes", "trains"), [(1, False), (11, True)], ids=["uploading", "killed"])
def test_a_claim_of_an_upload_in_flight_holds_until_it_stops(
    aml, blob_service, storage_env, idle_minutes: int, trains: bool
) -> None:
    """`chatft upload` claims the bytes before its blob exists. While it shows progress, the same bytes arriving
    by hand under another name point at it; a claim left by a killed upload (no progress for STALE_AFTER)
    holds nothing, and ingest takes it over."""
    from shared.azure.content_claims import BlobContentClaims

    workspace, _ = aml
    claims = BlobContentClaims(blob_service, storage_env["PREPARED_CONTAINER"], storage_env["UPLOAD_CONTAINER"])
    since = datetime.now(timezone.utc) - timedelta(minutes=idle_minutes)
    assert claims.claim(SHA, "big-upload.jsonl", by="chatft upload", now=since).acquired
    upload(blob_service, storage_env)
    trigger()
    assert len(workspace.jobs.created) == (1 if trains else 0)
    submission = report(blob_service, storage_env)["submission"]
    if trains:
        assert submission["status"] == "submitted"
    else:
        assert submission["status"] == "not submitted" and "being uploaded as big-upload.jsonl" in submission["reason"]
