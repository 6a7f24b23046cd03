"""Job finished -> model registered -> endpoint live, through the indexed functions, on Azurite.

Events are real func.EventGridEvent / func.CloudEvent objects decoded by azure.functions from
payloads in the documented shapes; the workspace is the real azure-ai-ml MLClient over the in-memory
REST service (tests/aml_rest.py); the ledger and the reports are on Azurite; the smoke test talks HTTP
to a local server.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

import function_app
import shared.entry.app_wiring
from shared.domain.deploy.names import ENDPOINT_NAME, endpoint_name
from shared.domain.ledger import Status
from shared.flows.job_settlement import RetryLater
from tests.aml_rest import studio_url
from tests.deploy_flow import (
    KEY,
    SCORING_KEY,
    completed,
    is_live,
    report,
    row,
    run_until,
    scoring,
    send,
    status,
    submit,
    tick,
)
from tests.events import WORKSPACE, event_grid, run_data
from tests.fake_aml import DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION
from tests.hosting import find_function, indexed_functions


@pytest.fixture
def flow(aml, blob_service, storage_env):
    """A submitted upload and a scoring server the fake endpoints point at."""
    workspace, _ = aml
    with scoring(workspace) as server:
        job, tags = submit(blob_service, storage_env, workspace)
        yield workspace, job, tags, server


def test_function_metadata_event_grid_and_timer_from_a_setting() -> None:
    bindings = {
        f.get_function_name(): json.loads(f.get_function_json())["bindings"]
        for f in indexed_functions(function_app.app)
    }
    [event] = bindings["job_events"]
    assert event["type"] == "eventGridTrigger" and event["direction"] == "IN"
    [timer] = bindings["deploy_reconciler"]
    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == "%DEPLOY_RECONCILE_SCHEDULE%"
    assert timer["runOnStartup"] is False and timer["useMonitor"] is True


def test_completed_five_times_and_out_of_order_deploys_once(flow, blob_service, storage_env) -> None:
    workspace, job, tags, server = flow
    send(status(job, tags, "Running"))
    for schema in ("eventgrid", "cloudevents", "eventgrid", "cloudevents", "eventgrid"):
        send(completed(job, tags, schema))
    send(status(job, tags, "Completed", "cloudevents"))
    send(status(job, tags, "Running"))  # late and out of order
    run_until(is_live)
    entry = row()
    assert len(workspace.models.created) == 1
    model = workspace.models.created[0]
    assert model.path == f"azureml://jobs/{job}/outputs/trained_model" and model.type == "mlflow_model"
    assert model.name == f"{DEFAULT_MODEL_NAME}-chats"  # <base model>-<dataset>: one model per dataset
    assert model.tags["chatft_job"] == job and model.tags["chatft_upload"] == KEY.sha256
    assert model.tags["chatft_base_model"].endswith(f"/models/{DEFAULT_MODEL_NAME}/versions/{DEFAULT_MODEL_VERSION}")
    endpoint = entry.deploy["endpoint"]
    assert ENDPOINT_NAME.match(endpoint) and 3 <= len(endpoint) <= 32
    assert [c for c in workspace.online_endpoints.calls if c[0] == "create"] == [("create", endpoint)]
    assert workspace.online_endpoints.calls.count(("update", endpoint)) == 1
    assert workspace.online_deployments.calls == [("create", endpoint, "demo")]
    [deployment] = workspace.online_deployments.deployments.values()
    assert deployment.model == model.id and deployment.instance_type == "Standard_NC24ads_A100_v4"
    assert deployment.liveness_probe.initial_delay == 600 and deployment.request_settings.request_timeout_ms == 90000
    assert workspace.online_endpoints.endpoints[endpoint].traffic == {"demo": 100}
    ep_tags = workspace.online_endpoints.endpoints[endpoint].tags
    assert (
        ep_tags["chatft_managed"] == "true" and ep_tags["chatft_upload"] == KEY.sha256 and ep_tags["chatft_job"] == job
    )
    # the smoke test: one conversation from the prepared test split, the notebook's body, key and header
    request = server.requests[0]  # the evaluation's requests follow (tests/test_evaluation_flow.py)
    assert (
        request["headers"]["authorization"] == f"Bearer {SCORING_KEY}"
        and request["headers"]["azureml-model-deployment"] == "demo"
    )
    body = json.loads(request["body"])
    assert body["params"] == {} and body["input_data"]["parameters"]["max_new_tokens"] == 200
    assert body["input_data"]["input_string"][0][-1]["role"] == "user"  # a list holding the conversation
    assert entry.deploy["input_shape"] == "conversations"
    assert entry.deploy["smoke"]["answer"] == "Lower the learning rate." and entry.deploy["smoke"]["latency_ms"] >= 0
    deployed = report(blob_service, storage_env)["deployment"]
    assert deployed["status"] == "live" and deployed["smoke_test"]["answer"] == "Lower the learning rate."
    assert report(blob_service, storage_env)["job"]["status"] == "completed"


def test_failed_job_is_reported_with_its_studio_link(flow, blob_service, storage_env) -> None:
    workspace, job, tags, _ = flow
    send(status(job, tags, "failed"))  # the documentation's sample writes it lower-case
    send(completed(job, tags))  # cannot happen after a failure, but must not resurrect it
    tick()
    assert row().status is Status.FAILED
    job_report = report(blob_service, storage_env)["job"]
    assert job_report["status"] == "failed" and job_report["studio_url"] == studio_url(job)
    assert workspace.models.created == [] and workspace.online_endpoints.calls == []


def test_canceled_job(flow, blob_service, storage_env) -> None:
    workspace, job, tags, _ = flow
    send(status(job, tags, "Canceled", "cloudevents"))
    assert row().status is Status.CANCELED and workspace.models.created == []
    assert report(blob_service, storage_env)["job"]["status"] == "canceled"


@pytest.mark.parametrize(
    "make",
    [
        lambda job, tags: event_grid(
            "Microsoft.MachineLearningServices.RunCompleted",
            run_data(job, tags),
            topic=WORKSPACE.replace("ws-chatft", "someone-else"),
        ),
        lambda job, tags: event_grid(
            "Microsoft.MachineLearningServices.RunCompleted",
            run_data(job + "_step", {**tags, "azureml.pipelinerunid": job}, run_type="azureml.StepRun"),
        ),
        lambda job, tags: event_grid(
            "Microsoft.MachineLearningServices.RunCompleted",
            run_data(job, {k: v for k, v in tags.items() if k != "chatft_managed"}),
        ),
        lambda job, tags: event_grid(
            "Microsoft.MachineLearningServices.RunStatusChanged", run_data(job, tags, status="Running")
        ),
        lambda job, tags: event_grid("Microsoft.MachineLearningServices.ModelRegistered", run_data(job, tags)),
        lambda job, tags: event_grid(
            "Microsoft.MachineLearningServices.RunCompleted", run_data("chatft-other-job-a9", tags)
        ),
    ],
    ids=["foreign workspace", "child step", "not ours", "running", "other event type", "another attempt's job"],
)
def test_events_that_must_not_act(flow, make) -> None:
    workspace, job, tags, _ = flow
    send(make(job, tags))
    assert row().status is Status.SUBMITTED
    assert workspace.models.created == [] and workspace.online_endpoints.calls == []


def test_an_event_before_the_submission_is_recorded_is_redelivered_later(flow, monkeypatch) -> None:
    workspace, job, tags, _ = flow
    ledger = shared.entry.app_wiring.ledger()
    entry = row()
    entry.status = Status.CLAIMED
    assert ledger.save(entry)
    with pytest.raises(RetryLater):
        send(completed(job, tags))
    assert workspace.models.created == []


def test_deployment_failure_deletes_the_endpoint_and_says_why(flow, blob_service, storage_env) -> None:
    workspace, job, tags, _ = flow
    endpoint = endpoint_name("chats", job, WORKSPACE)
    workspace.online_deployments.fail_next.append(f"{endpoint}/demo")
    send(completed(job, tags))
    run_until(lambda: row().status is Status.DEPLOY_FAILED)
    entry = row()
    assert "provisioning Failed" in entry.error
    assert (
        "delete",
        endpoint,
    ) in workspace.online_endpoints.calls and endpoint not in workspace.online_endpoints.endpoints
    deployed = report(blob_service, storage_env)["deployment"]
    assert deployed["status"] == "deploy_failed" and "deleted" in deployed["cleanup"]


def test_an_instance_type_outside_the_inference_allow_list_fails_clearly(
    flow, monkeypatch, blob_service, storage_env
) -> None:
    workspace, job, tags, _ = flow
    monkeypatch.setenv("DEPLOY_INSTANCE_TYPE", "Standard_D4s_v3")
    shared.entry.app_wiring.settings.cache_clear()
    shared.entry.app_wiring.deploy_context.cache_clear()
    send(completed(job, tags))
    assert row().status is Status.REGISTERED  # the handler only registers; the reconciler deploys
    tick()
    assert row().status is Status.DEPLOY_FAILED
    assert "DEPLOY_INSTANCE_TYPE Standard_D4s_v3 is not in" in row().error
    assert workspace.online_endpoints.calls == []  # nothing billable was ever created


def test_the_deadline_cleans_up(flow, monkeypatch) -> None:
    workspace, job, tags, server = flow
    server.fail_next.extend([503] * 50)  # the endpoint never answers
    send(completed(job, tags))
    run_until(lambda: row().deploy.get("step") == "smoke_test")
    tick()
    assert row().status is Status.DEPLOYING and "HTTP 503" in row().deploy["last_error"]
    ctx = shared.entry.app_wiring.deploy_context()
    later = ctx.now() + timedelta(hours=3)
    monkeypatch.setattr(ctx, "now", lambda: later)
    tick()
    entry = row()
    assert entry.status is Status.DEPLOY_FAILED and "deadline" in entry.error
    assert entry.deploy["endpoint"] not in workspace.online_endpoints.endpoints


class Crash(BaseException):
    """A process dying mid-step: not an Exception, so nothing in chatft catches it."""


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("crash_at", range(1, 10))
def test_a_crash_at_any_transition_still_ends_live_without_duplicates(
    flow, monkeypatch, crash_at: int, when: str
) -> None:
    workspace, job, tags, _ = flow
    ledger = shared.entry.app_wiring.ledger()
    real_save, saves = ledger.save, {"n": 0}

    def crashing_save(entry):
        saves["n"] += 1
        if saves["n"] == crash_at and when == "before":
            raise Crash(f"crash before save #{crash_at}")
        result = real_save(entry)
        if saves["n"] == crash_at and when == "after":
            raise Crash(f"crash after save #{crash_at}")
        return result

    monkeypatch.setattr(ledger, "save", crashing_save)
    for attempt in range(3):  # Event Grid redelivers until the handler returns normally
        try:
            send(completed(job, tags))
            break
        except Crash:
            assert attempt == 0
    for _ in range(20):
        try:
            if is_live():
                break
            tick()
        except Crash:
            pass
    assert is_live()
    endpoint = row().deploy["endpoint"]
    assert len(workspace.models.created) == 1
    assert [c for c in workspace.online_endpoints.calls if c[0] == "create"] == [("create", endpoint)]
    assert workspace.online_deployments.calls == [("create", endpoint, "demo")]
    assert workspace.online_endpoints.calls.count(("update", endpoint)) == 1


def test_reconciler_logs_a_late_timer(aml, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="chatft"):
        tick(past_due=True)
    assert any("past_due" in r.getMessage() for r in caplog.records)


def test_timer_and_event_functions_are_indexed() -> None:
    names = {f.get_function_name() for f in indexed_functions(function_app.app)}
    assert {"ingest_upload", "job_events", "deploy_reconciler"} <= names
    assert find_function(function_app.app, "job_events").get_trigger().type == "eventGridTrigger"


def test_a_repeated_upload_keeps_the_report_of_the_live_deployment(flow, blob_service, storage_env) -> None:
    from tests.deploy_flow import DATA
    from tests.hosting import invoke_blob_trigger

    workspace, job, tags, _ = flow
    send(completed(job, tags))
    run_until(is_live)
    blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "chats.jsonl").upload_blob(DATA, overwrite=True)
    invoke_blob_trigger(function_app.app, "ingest_upload", "chats.jsonl")
    doc = report(blob_service, storage_env)
    assert doc["deployment"]["status"] == "live" and doc["job"]["status"] == "completed"
    assert doc["submission"]["status"] == "submitted" and doc["submission"]["job"] == job
    assert "already submitted" in doc["submission"]["repeated_upload"]
    assert len(workspace.jobs.created) == 1


def test_a_retry_after_a_failed_job_starts_a_fresh_report(flow, blob_service, storage_env) -> None:
    from tests.deploy_flow import DATA
    from tests.hosting import invoke_blob_trigger

    workspace, job, tags, _ = flow
    send(status(job, tags, "Failed"))
    assert report(blob_service, storage_env)["job"]["status"] == "failed"
    blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "chats.jsonl").upload_blob(DATA, overwrite=True)
    invoke_blob_trigger(function_app.app, "ingest_upload", "chats.jsonl")
    doc = report(blob_service, storage_env)
    assert doc["submission"]["status"] == "submitted" and doc["submission"]["job"].endswith("-a2")
    assert "job" not in doc and len(workspace.jobs.created) == 2
