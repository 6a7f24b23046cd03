"""Issue 20 items 1-5 on the Azure side: the job queue, the live-endpoint cap, JOB_MAX_HOURS, `chatft cancel`
and the budget, through the indexed functions on Azurite, with the real MLClient over the in-memory Azure ML
service (tests/aml_rest.py).

What the SDK raises when a job cannot be canceled: JobOperations.begin_cancel (azure/ai/ml/operations/
_job_operations.py) calls the generated `jobs.begin_cancel`, whose `_cancel_initial`
(_restclient/arm_ml_service/operations/_operations.py) maps 401/404/409/304 through its error_map and raises
HttpResponseError for any other status outside 200/202. The service's own answer for a finished job is not
documented; azure-ai-ml's test helper `cancel_job` (Azure/azure-sdk-for-python, sdk/ml/azure-ai-ml/tests/
test_utilities/utils.py) catches HttpResponseError around it, which is what chatft relies on (and it reads the
job's status first, so a finished job is never even asked).
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

import function_app
import shared.entry.app_wiring
from shared.domain import lifecycle_events as le
from shared.domain.ledger import Status, UploadKey
from shared.flows.cancel import cancel
from shared.flows.endpoint_actions import ActionContext, retire
from shared.flows.upload_status import find
from tests.aml_rest import ServiceError
from tests.chats import valid_file
from tests.concurrency import run_concurrently
from tests.deploy_flow import completed, scoring, send, tick
from tests.hosting import invoke_blob_trigger

FILES = [valid_file(40, start=100 * i) for i in range(4)]
SHAS = [hashlib.sha256(data).hexdigest() for data in FILES]


def settings(monkeypatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    shared.entry.app_wiring.reset()


def upload(blob_service, storage_env, i: int) -> None:
    name = f"set{i}.jsonl"
    blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], name).upload_blob(FILES[i], overwrite=True)
    invoke_blob_trigger(function_app.app, "ingest_upload", name)


def row(i: int):
    return shared.entry.app_wiring.ledger().get(UploadKey(f"set{i}", SHAS[i]))


def jobs(workspace) -> list[str]:
    return [c["job"].name for c in workspace.jobs.created]


def tags_of(workspace, job: str) -> dict[str, str]:
    return next(c["tags"] for c in workspace.jobs.created if c["job"].name == job)


def later(monkeypatch, hours: float) -> None:
    ctx = shared.entry.app_wiring.deploy_context()
    moved = ctx.now() + timedelta(hours=hours)
    monkeypatch.setattr(ctx, "now", lambda: moved)


def action_ctx() -> ActionContext:
    return ActionContext(
        shared.entry.app_wiring.settings(),
        shared.entry.app_wiring.ledger(),
        shared.entry.app_wiring.workspace(),
        shared.entry.app_wiring.prepared_store(),
    )


def status_of(storage_env, i: int):
    from shared.azure.upload import UploadContainer, storage_client

    s = shared.entry.app_wiring.settings()
    store = UploadContainer(storage_client(), s.upload_container, s.prepared_container)
    return find(shared.entry.app_wiring.ledger(), store, f"set{i}.jsonl")


def test_uploads_past_the_cap_wait_in_arrival_order_and_start_as_jobs_end(
    aml, blob_service, storage_env, monkeypatch
) -> None:
    workspace, _ = aml
    settings(monkeypatch, MAX_ACTIVE_JOBS="1")
    for i in range(3):
        upload(blob_service, storage_env, i)
    assert [row(i).status for i in range(3)] == [Status.SUBMITTED, Status.QUEUED, Status.QUEUED]
    assert len(jobs(workspace)) == 1
    second = status_of(storage_env, 1)
    assert second.stage.value == "queued" and second.queue_place == 1
    assert "place 1 in the queue" in second.detail and "MAX_ACTIVE_JOBS=1: 1 job running" in second.detail
    assert status_of(storage_env, 2).queue_place == 2
    queued = [e for e in le.earned(row(1)) if e.type == le.JOB_QUEUED]
    assert queued and "MAX_ACTIVE_JOBS" in queued[0].data["reason"]
    tick()  # no slot free: nothing moves
    assert len(jobs(workspace)) == 1
    shared.entry.app_wiring.reset()  # a restart: the queue is in the ledger
    [first] = jobs(workspace)
    send(completed(first, tags_of(workspace, first)))
    tick()
    assert row(1).status is Status.SUBMITTED and row(2).status is Status.QUEUED
    assert len(jobs(workspace)) == 2 and jobs(workspace)[1] == row(1).job_name
    assert status_of(storage_env, 2).queue_place == 1
    history = [m.stage.value for m in status_of(storage_env, 1).milestones]
    assert history[:3] == ["validated", "queued", "submitted"]


def test_concurrent_ticks_submit_each_queued_upload_once(aml, blob_service, storage_env, monkeypatch) -> None:
    workspace, _ = aml
    settings(monkeypatch, MAX_ACTIVE_JOBS="2")
    for i in range(4):
        upload(blob_service, storage_env, i)
    assert len(jobs(workspace)) == 2
    first = jobs(workspace)[0]
    send(completed(first, tags_of(workspace, first)))
    ctx = shared.entry.app_wiring.deploy_context()
    from shared.flows.job_queue import submit_queued

    _, errors = run_concurrently([lambda: submit_queued(ctx) for _ in range(6)])
    assert errors == []
    assert len(jobs(workspace)) == 3 and len(set(jobs(workspace))) == 3
    assert row(2).status is Status.SUBMITTED and row(3).status is Status.QUEUED
    assert sum(row(i).status is Status.SUBMITTED for i in range(4)) == 2  # never past the cap


def test_concurrent_deliveries_never_pass_the_cap(aml, blob_service, storage_env, monkeypatch) -> None:
    workspace, _ = aml
    settings(monkeypatch, MAX_ACTIVE_JOBS="1")
    for i in range(4):
        name = f"set{i}.jsonl"
        blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], name).upload_blob(FILES[i], overwrite=True)
    _, errors = run_concurrently(
        [lambda i=i: invoke_blob_trigger(function_app.app, "ingest_upload", f"set{i}.jsonl") for i in range(4)]
    )
    assert errors == []
    assert len(jobs(workspace)) <= 1
    assert {row(i).status for i in range(4)} <= {Status.SUBMITTED, Status.QUEUED}
    for _ in range(3):  # whoever backed off, the next tick starts the first of them
        tick()
    assert len(jobs(workspace)) == 1


def test_cancel_a_running_job_then_again(aml, blob_service, storage_env, monkeypatch) -> None:
    service, _ = aml
    upload(blob_service, storage_env, 0)
    job = row(0).job_name
    outcome = cancel(action_ctx(), "set0.jsonl", reason="wrong file", by="chatft cancel (ana@laptop)")
    assert outcome.ok and outcome.changed and f"job {job} canceled" in outcome.message
    assert service.cancel_requests == [job] and service.jobs.get(job).status == "Canceled"
    entry = row(0)
    assert entry.status is Status.CANCELED and entry.extra["canceled_by"] == "chatft cancel (ana@laptop)"
    assert entry.error == "canceled by chatft cancel (ana@laptop): wrong file"
    [event] = [e for e in le.earned(entry) if e.type == le.JOB_CANCELED]
    assert event.data["by"] == "chatft cancel (ana@laptop)" and event.time == entry.extra["canceled_at"]
    again = cancel(action_ctx(), "set0.jsonl")
    assert again.ok and not again.changed and "already canceled" in again.message and "ana@laptop" in again.message
    assert service.cancel_requests == [job]
    send(completed(job, tags_of(service, job)))  # a late event of the job finds the row settled
    assert row(0).status is Status.CANCELED


def test_cancel_a_finished_job_is_one_line_and_asks_nothing(aml, blob_service, storage_env) -> None:
    service, _ = aml
    upload(blob_service, storage_env, 0)
    job = row(0).job_name
    service.jobs.get(job)._status = "Completed"  # ended; its event not handled yet
    outcome = cancel(action_ctx(), "set0.jsonl")
    assert not outcome.ok and not outcome.changed and f"job {job} already completed" in outcome.message
    assert service.cancel_requests == [] and row(0).status is Status.SUBMITTED


def test_a_job_that_ends_while_its_cancel_is_sent_is_read_again(aml, blob_service, storage_env, monkeypatch) -> None:
    service, _ = aml
    upload(blob_service, storage_env, 0)

    def ended_meanwhile(name: str, *, body):
        service.jobs.get(name)._status = "Failed"
        raise ServiceError(400, "UserError", f"Job {name} is in terminal state Failed and cannot be canceled")

    service._routes = [(v, p, ended_meanwhile if "cancel" in p.pattern else h) for v, p, h in service._routes]
    outcome = cancel(action_ctx(), "set0.jsonl")
    assert not outcome.ok and "already failed" in outcome.message and row(0).status is Status.SUBMITTED


def test_what_the_sdk_raises_for_a_job_it_cannot_cancel(aml, blob_service, storage_env) -> None:
    service, _ = aml
    upload(blob_service, storage_env, 0)
    job = row(0).job_name
    client = shared.entry.app_wiring.workspace().workspace
    service.jobs.get(job)._status = "Completed"
    with pytest.raises(HttpResponseError) as refused:
        client.jobs.begin_cancel(job)
    assert type(refused.value) is HttpResponseError and refused.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        client.jobs.begin_cancel("no-such-job")


def test_cancel_takes_a_queued_upload_out_of_the_queue(aml, blob_service, storage_env, monkeypatch) -> None:
    service, _ = aml
    settings(monkeypatch, MAX_ACTIVE_JOBS="1")
    upload(blob_service, storage_env, 0)
    upload(blob_service, storage_env, 1)
    outcome = cancel(action_ctx(), "set1.jsonl", by="chatft cancel (bo@desk)")
    assert outcome.ok and "taken out of the queue" in outcome.message and service.cancel_requests == []
    assert row(1).status is Status.CANCELED and row(1).job_name == ""
    [first] = jobs(service)
    send(completed(first, tags_of(service, first)))
    tick()
    assert len(jobs(service)) == 1 and row(1).status is Status.CANCELED  # never submitted
    history = [m.stage.value for m in status_of(storage_env, 1).milestones]
    assert history == ["validated", "queued", "canceled"]


def test_a_job_past_job_max_hours_is_canceled(aml, blob_service, storage_env, monkeypatch) -> None:
    service, _ = aml
    settings(monkeypatch, JOB_MAX_HOURS="24")
    upload(blob_service, storage_env, 0)
    job = row(0).job_name
    later(monkeypatch, 23.5)
    tick()
    assert row(0).status is Status.SUBMITTED and service.cancel_requests == []
    later(monkeypatch, 1)
    tick()
    entry = row(0)
    assert service.cancel_requests == [job] and entry.status is Status.CANCELED
    assert "JOB_MAX_HOURS is 24" in entry.error and entry.extra["canceled_by"].startswith("JOB_MAX_HOURS")
    [event] = [e for e in le.earned(entry) if e.type == le.JOB_CANCELED]
    assert event.data["by"].startswith("JOB_MAX_HOURS") and "JOB_MAX_HOURS" in event.data["error"]


def _live(service, blob_service, storage_env, i: int) -> None:
    upload(blob_service, storage_env, i)
    job = row(i).job_name
    send(completed(job, tags_of(service, job)))
    for _ in range(15):
        if row(i).status in (Status.LIVE, Status.DEPLOY_QUEUED):
            return
        tick()


def test_a_model_past_max_live_endpoints_waits_until_one_is_retired(
    aml, blob_service, storage_env, monkeypatch
) -> None:
    service, _ = aml
    settings(monkeypatch, MAX_LIVE_ENDPOINTS="1", MAX_ACTIVE_JOBS="5")
    with scoring(service):
        _live(service, blob_service, storage_env, 0)
        _live(service, blob_service, storage_env, 1)
        assert row(0).status is Status.LIVE and row(1).status is Status.DEPLOY_QUEUED
        assert "MAX_LIVE_ENDPOINTS=1" in row(1).deploy["queued"]["reason"]
        assert row(1).deploy["endpoint"] not in service.online_endpoints.endpoints  # nothing created
        view = status_of(storage_env, 1)
        assert view.stage.value == "deploy_queued" and "MAX_LIVE_ENDPOINTS=1" in view.detail
        tick()
        assert row(1).status is Status.DEPLOY_QUEUED
        retire(action_ctx(), "set0.jsonl", reason="done with it")
        for _ in range(15):
            if row(1).status is Status.LIVE:
                break
            tick()
        assert row(1).status is Status.LIVE


def test_evict_idle_retires_the_least_used_endpoint_first(aml, blob_service, storage_env, monkeypatch) -> None:
    from tests.fake_monitor import FakeMetricsClient

    service, _ = aml
    settings(
        monkeypatch, MAX_LIVE_ENDPOINTS="2", MAX_ACTIVE_JOBS="5", DEPLOY_EVICT_IDLE="true", JANITOR_IDLE_MINUTES="60"
    )
    with scoring(service):
        _live(service, blob_service, storage_env, 0)
        _live(service, blob_service, storage_env, 1)
        names = [row(0).deploy["endpoint"], row(1).deploy["endpoint"]]
        ws_id = shared.entry.app_wiring.settings().workspace_resource_id
        metrics = FakeMetricsClient(
            {f"{ws_id}/onlineEndpoints/{names[0]}": 5, f"{ws_id}/onlineEndpoints/{names[1]}": 0}
        )
        ctx = shared.entry.app_wiring.deploy_context()
        from shared.azure.metrics import AzureMonitorUsage

        ctx.usage = AzureMonitorUsage(lambda: "eastus", client_factory=lambda endpoint, credential: metrics)
        later(monkeypatch, 2)  # both live for longer than JANITOR_IDLE_MINUTES
        _live(service, blob_service, storage_env, 2)
        assert row(2).status is Status.LIVE
        assert row(1).status in (Status.RETIRING, Status.RETIRED) and row(0).status is Status.LIVE
        assert "least recently used" in row(1).deploy["retired"]["reason"]
        assert row(2).deploy["evicted"]["endpoint"] == names[1]


def test_doctor_shows_the_caps_in_effect_in_one_line() -> None:
    from shared.flows.doctor import DoctorContext, check_guards
    from shared.settings import Settings

    env = {"ML_BACKEND": "none", "MAX_ACTIVE_JOBS": "3", "MONTHLY_BUDGET_USD": "500", "DEPLOY_EVICT_IDLE": "true"}
    none = lambda: None  # noqa: E731 - check_guards reads the settings alone
    check = check_guards(DoctorContext(Settings.from_env(env), env, None, none, none, none, none, none))
    assert check.ok and "\n" not in check.detail
    assert check.detail == (
        "MAX_ACTIVE_JOBS=3, MAX_LIVE_ENDPOINTS=2 (DEPLOY_EVICT_IDLE=true), JOB_MAX_HOURS=24, "
        "MONTHLY_BUDGET_USD=$500 (GPU_HOURLY_PRICE_USD none (GPU hours not priced))"
    )


def test_the_budget_holds_new_jobs_and_deployments_and_leaves_live_endpoints(
    aml, blob_service, storage_env, monkeypatch
) -> None:
    service, _ = aml
    settings(monkeypatch, MAX_LIVE_ENDPOINTS="5", MAX_ACTIVE_JOBS="5")
    with scoring(service):
        _live(service, blob_service, storage_env, 0)
        upload(blob_service, storage_env, 1)  # submitted before the budget is set
        # a live NC24ads_A100_v4 costs about $3.67 an hour: a few hundred milliseconds pass a hundredth of a cent
        settings(monkeypatch, MONTHLY_BUDGET_USD="0.0001")
        time.sleep(0.3)
        upload(blob_service, storage_env, 2)
        assert row(2).status is Status.QUEUED and row(2).extra["queued_reason"].startswith("budget: ")
        assert "has reached MONTHLY_BUDGET_USD $0.0001" in row(2).extra["queued_reason"]
        job = row(1).job_name
        send(completed(job, tags_of(service, job)))
        for _ in range(3):
            tick()
        assert row(1).status is Status.DEPLOY_QUEUED and row(1).deploy["queued"]["reason"].startswith("budget: ")
        assert row(1).deploy["endpoint"] not in service.online_endpoints.endpoints
        assert row(0).status is Status.LIVE and row(2).status is Status.QUEUED  # nothing live is touched
        settings(monkeypatch, MONTHLY_BUDGET_USD="1000")  # the setting rises: both go on
        for _ in range(15):
            tick()
            if row(1).status is Status.LIVE and row(2).status is Status.SUBMITTED:
                break
        assert row(1).status is Status.LIVE and row(2).status is Status.SUBMITTED


def test_the_spend_estimate_counts_the_month_at_list_prices() -> None:
    """GPU hours x GPU_HOURLY_PRICE_USD from submission to the job's end, endpoint hours from live to retired (or
    now) at the size's list price (shared/domain/deploy/sku.py: Standard_NC24ads_A100_v4 $3.67/h), clipped to the
    month (UTC)."""
    from datetime import datetime, timezone

    from shared.domain.deploy.sku import price_of
    from shared.domain.ledger import LedgerEntry
    from shared.domain.spend import WARN_AT, month_spend

    now = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    since = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

    def entry(sha: str, status: Status, **extra: str) -> LedgerEntry:
        return LedgerEntry(
            UploadKey("d", sha), status, 1, "c", since, "e", "up/d.jsonl", sha[:12], "job-" + sha, extra=extra
        )

    running = entry("a", Status.SUBMITTED, job_gpus="4", job_started_at=since.isoformat())
    live = entry("b", Status.LIVE, job_gpus="1", job_started_at="2026-02-28T12:00:00+00:00")
    live.extra["job_ended_at"] = "2026-03-01T02:00:00+00:00"  # 2 of its 38 hours were in March
    live.deploy = {"live_at": "2026-03-02T00:00:00+00:00", "instance_type": "Standard_NC24ads_A100_v4"}
    queued = entry("c", Status.QUEUED)
    spend = month_spend([running, live, queued], now, gpu_price="2", budget="200")
    by_sha = {u.sha256: u for u in spend.uploads}
    assert set(by_sha) == {"a", "b"} and spend.month == "2026-03"
    assert by_sha["a"].gpu_hours == 96 and by_sha["a"].gpu_usd == 192
    assert by_sha["b"].gpu_hours == 2 and by_sha["b"].endpoint_hours == 12
    assert by_sha["b"].endpoint_usd == pytest.approx(12 * price_of("Standard_NC24ads_A100_v4"))
    assert spend.usd == pytest.approx(192 + 4 + 12 * price_of("Standard_NC24ads_A100_v4")) and spend.share > WARN_AT
    assert f"estimated spend ${spend.usd:.2f} has reached MONTHLY_BUDGET_USD $200 (2026-03)" in spend.over_budget()
    assert month_spend([running], now, gpu_price="", budget="").over_budget() is None


def test_chatft_budget_prints_the_month_by_upload_and_says_it_is_an_estimate(
    storage_env, tmp_path, monkeypatch
) -> None:
    import json
    from datetime import datetime, timezone

    pytest.importorskip("typer", reason="the chatft command; the deployed environment, like the app, has no CLI")
    from typer.testing import CliRunner

    from shared.entry.cli.app import app
    from tests.test_upload_command import settings_for

    target = settings_for(storage_env, tmp_path, monkeypatch)
    values = json.loads(target.read_text())
    values["Values"] |= {"MONTHLY_BUDGET_USD": "100", "GPU_HOURLY_PRICE_USD": "2.5"}
    target.write_text(json.dumps(values))
    ledger, now = shared.entry.app_wiring.ledger(), datetime.now(timezone.utc)
    key = UploadKey("chats", SHAS[0])
    ledger.claim(key, upload_etag="", source="up/chats.jsonl", cid="c", now=now, stale_after=timedelta(1))
    entry = ledger.get(key)
    entry.status, entry.job_name = Status.SUBMITTED, "chatft-chats-abc-a1"
    entry.extra |= {"job_gpus": "2", "job_started_at": now.isoformat()}
    assert ledger.save(entry)
    result = CliRunner().invoke(app, ["budget", "--json", "--settings", str(target)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # stderr: the target in one dim line
    assert (
        doc["budget_usd"] == 100 and doc["gpu_hourly_price_usd"] == 2.5 and "estimate from list prices" in doc["note"]
    )
    [spent] = doc["uploads"]
    assert spent["upload"] == "up/chats.jsonl" and spent["status"] == "submitted" and spent["gpu_usd"] is not None
    table = CliRunner().invoke(app, ["budget", "--settings", str(target)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "up/chats.jsonl" in table.output and "of MONTHLY_BUDGET_USD $100" in table.output
    assert "estimate from list prices" in table.output
