"""Self-healing and a thin event handler (issue 10 items 9, 17, 18).

- Lost events: the reconciler polls quiet `submitted` jobs and settles them as the event would.
- The Event Grid handler only classifies, registers and writes the ledger; the reconciler deploys.
- Registration errors: permanent ones fail the upload in the same delivery; transient ones are
  redelivered; a new upload of the same bytes registers again without retraining.

Everything runs through the indexed functions, on Azurite, with the fake MLClient operations.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ServiceResponseError

import function_app
import shared.entry.app_wiring
from shared.domain.ledger import Status
from shared.flows.job_settlement import RetryLater
from tests.deploy_flow import DATA, completed, is_live, report, row, run_until, scoring, send, submit, tick
from tests.fake_aml import DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION
from tests.hosting import invoke_blob_trigger


@pytest.fixture
def flow(aml, blob_service, storage_env):
    workspace, registry = aml
    with scoring(workspace):
        job, tags = submit(blob_service, storage_env, workspace)
        yield workspace, registry, job, tags


def job_ends(workspace, job: str, status: str) -> None:
    """The job reaches a state in Azure ML; no event is sent."""
    workspace.jobs.get(job)._status = status


def later(monkeypatch, minutes: float) -> None:
    """Move the reconciler's clock forward."""
    ctx = shared.entry.app_wiring.deploy_context()
    moved = ctx.now() + timedelta(minutes=minutes)
    monkeypatch.setattr(ctx, "now", lambda: moved)


def test_no_events_at_all_still_ends_live(flow, monkeypatch, blob_service, storage_env) -> None:
    workspace, _, job, _ = flow
    job_ends(workspace, job, "Completed")
    tick()  # not quiet yet: JOB_POLL_QUIET_MINUTES (15) since the submission was recorded
    assert row().status is Status.SUBMITTED and workspace.models.created == []
    later(monkeypatch, 16)
    tick()
    assert row().status in (Status.REGISTERED, Status.DEPLOYING)
    run_until(is_live)
    [model] = workspace.models.created
    base_model = f"/models/{DEFAULT_MODEL_NAME}/versions/{DEFAULT_MODEL_VERSION}"
    assert model.tags["chatft_job"] == job and model.tags["chatft_base_model"].endswith(base_model)
    doc = report(blob_service, storage_env)
    assert doc["job"]["status"] == "completed" and doc["deployment"]["status"] == "live"


def test_the_quiet_time_is_a_setting(flow, monkeypatch) -> None:
    workspace, _, job, _ = flow
    monkeypatch.setenv("JOB_POLL_QUIET_MINUTES", "300")
    shared.entry.app_wiring.settings.cache_clear()
    shared.entry.app_wiring.deploy_context.cache_clear()
    job_ends(workspace, job, "Completed")
    later(monkeypatch, 200)
    tick()
    assert row().status is Status.SUBMITTED
    later(monkeypatch, 301)
    tick()
    assert row().status is not Status.SUBMITTED


@pytest.mark.parametrize(("state", "expected"), [("Failed", Status.FAILED), ("Canceled", Status.CANCELED)])
def test_a_job_that_ended_badly_without_events_is_reported(
    flow, monkeypatch, blob_service, storage_env, state, expected
) -> None:
    workspace, _, job, _ = flow
    job_ends(workspace, job, state)
    later(monkeypatch, 20)
    tick()
    assert row().status is expected
    assert report(blob_service, storage_env)["job"]["status"] == state.lower()
    assert workspace.models.created == []


@pytest.mark.parametrize("state", ["Running", "Finalizing", "CancelRequested", "NotStarted", ""])
def test_a_job_still_running_is_left_alone(flow, monkeypatch, state) -> None:
    workspace, _, job, _ = flow
    job_ends(workspace, job, state)
    later(monkeypatch, 60)
    tick()
    assert row().status is Status.SUBMITTED and workspace.models.created == []


def test_the_event_and_the_poll_racing_register_once(flow, monkeypatch) -> None:
    workspace, _, job, tags = flow
    job_ends(workspace, job, "Completed")
    later(monkeypatch, 20)
    tick()
    send(completed(job, tags))
    tick()
    send(completed(job, tags))
    run_until(is_live)
    assert len(workspace.models.created) == 1
    assert [c for c in workspace.online_endpoints.calls if c[0] == "create"] == [("create", row().deploy["endpoint"])]


def test_the_event_handler_only_registers(flow) -> None:
    """Item 18: no endpoint, no deployment, no registry client, no thread left behind by the handler."""
    workspace, registry, job, tags = flow
    registry.models.calls.clear()
    registry.components.calls.clear()
    before = set(threading.enumerate())
    send(completed(job, tags))
    assert row().status is Status.REGISTERED and len(workspace.models.created) == 1
    assert workspace.online_endpoints.calls == [] and workspace.online_deployments.calls == []
    assert registry.models.calls == [] and registry.components.calls == []
    assert set(threading.enumerate()) - before == set()
    run_until(is_live)  # the reconciler owns everything after registration


def forbidden() -> HttpResponseError:
    """What the generated operation raises for a 403 it has no error_map entry for (azure-core map_error
    falls through to HttpResponseError; _restclient/arm_ml_service/operations/_operations.py)."""
    error = HttpResponseError(message="(AuthorizationFailed) The client does not have authorization")
    error.status_code = 403
    return error


def test_a_permanent_registration_error_fails_the_upload_in_the_same_delivery(
    flow, monkeypatch, blob_service, storage_env
) -> None:
    workspace, _, job, tags = flow
    adapter = shared.entry.app_wiring.workspace()
    real_register = adapter.register_model
    monkeypatch.setattr(adapter, "register_model", lambda **kw: (_ for _ in ()).throw(forbidden()))
    send(completed(job, tags))  # returns normally: Event Grid must not redeliver it for a day
    entry = row()
    assert entry.status is Status.FAILED and "AuthorizationFailed" in entry.error
    section = report(blob_service, storage_env)["job"]
    assert section["status"] == "completed" and section["registration"].startswith("failed: ")
    assert "without retraining" in section["retry"]
    send(completed(job, tags))  # a redelivery changes nothing
    assert row().status is Status.FAILED

    # the cause is fixed; the same bytes are uploaded again: registered again, not retrained
    monkeypatch.setattr(adapter, "register_model", real_register)
    job_ends(workspace, job, "Completed")
    blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "chats.jsonl").upload_blob(DATA, overwrite=True)
    invoke_blob_trigger(function_app.app, "ingest_upload", "chats.jsonl")
    assert row().status is Status.SUBMITTED and len(workspace.jobs.created) == 1
    assert (
        "registering it again without retraining" in report(blob_service, storage_env)["submission"]["repeated_upload"]
    )
    tick()  # no quiet wait: the re-upload asked for it
    assert row().status in (Status.REGISTERED, Status.DEPLOYING)
    run_until(is_live)
    assert len(workspace.jobs.created) == 1 and len(workspace.models.created) == 1


@pytest.mark.parametrize(
    "error",
    [ServiceResponseError("connection reset"), HttpResponseError(message="busy")],
    ids=["connection", "503"],
)
def test_a_transient_registration_error_is_redelivered(flow, monkeypatch, error) -> None:
    _, _, job, tags = flow
    if isinstance(error, HttpResponseError):
        error.status_code = 503
    adapter = shared.entry.app_wiring.workspace()
    real_register = adapter.register_model
    monkeypatch.setattr(adapter, "register_model", lambda **kw: (_ for _ in ()).throw(error))
    with pytest.raises(RetryLater):
        send(completed(job, tags))
    assert row().status is Status.SUBMITTED
    monkeypatch.setattr(adapter, "register_model", real_register)
    send(completed(job, tags))  # Event Grid's redelivery
    assert row().status is Status.REGISTERED


def test_the_report_follows_the_deployment_step_by_step(flow, blob_service, storage_env) -> None:
    _, _, job, tags = flow
    send(completed(job, tags))
    seen = []
    for _ in range(20):
        tick()
        section = report(blob_service, storage_env)["deployment"]
        seen.append((section["status"], section["step"]))
        if section["status"] == "live":
            break
    assert seen[-1] == ("live", "live")
    assert any(status == "deploying" for status, _ in seen)  # not only the final word
