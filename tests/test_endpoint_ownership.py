"""No endpoint outlives its ledger row, and no row says `live` for an endpoint that is gone (issue 19, items 1, 2).

Driven through the indexed timer functions on Azurite, with the REAL azure-ai-ml MLClient over the in-memory
Azure ML service (tests/aml_rest.py), and for item 2 the local backend too.

How the SDK lists endpoints: `OnlineEndpointOperations.list` (azure/ai/ml/operations/_online_endpoint_operations.py)
returns the generated `OnlineEndpointsOperations.list`'s ItemPaged (azure/ai/ml/_restclient/arm_ml_service/
operations/_operations.py), whose `get_next` raises HttpResponseError (or the error_map's ResourceNotFoundError
for a 404) on any page that is not 200; azure-core's RetryPolicy retries a 503 three times first. The adapter
(shared/azure/azureml/client.py `list_endpoints`) reads every page before it returns, so a list either gives the
whole workspace or raises: the janitor never judges a row against half a list.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.ai.ml.entities import Workspace
from azure.core.exceptions import HttpResponseError

import shared.entry.app_wiring
from shared.azure.metrics import AzureMonitorUsage
from shared.domain import lifecycle_events as le
from shared.domain.ledger import Status
from shared.domain.upload_stage import Stage, upload_view
from shared.flows import endpoint_actions
from shared.flows.janitor import JanitorContext, run_janitor
from tests.aml_rest import FakeCredential
from tests.deploy_flow import SHA, completed, report, row, run_until, scoring, send, submit, tick
from tests.events import WORKSPACE
from tests.fake_monitor import FakeMetricsClient
from tests.local_backend_setup import local_backend
from tests.test_janitor import OURS, add, deleted, run_timer
from tests.test_lifecycle_events import ENDPOINT, serve_topic

GONE = "endpoint deleted outside chatft"


@pytest.fixture
def world(aml, blob_service, storage_env, monkeypatch):
    """(service, metrics, later, topic): the janitor with the fake Azure Monitor, a clock 5 hours ahead and the
    lifecycle events going to an in-memory Event Grid topic through the real EventGridPublisherClient."""
    service, _ = aml
    service.workspaces = type(
        "Workspaces", (), {"get": staticmethod(lambda name=None: Workspace(name=name, location="westeurope"))}
    )()
    topic = serve_topic(monkeypatch)
    credential = FakeCredential()
    monkeypatch.setattr("shared.azure.identity.credential", lambda *a, **k: credential)
    monkeypatch.setenv("EVENTS_TOPIC_ENDPOINT", ENDPOINT)
    for cached in (
        shared.entry.app_wiring.settings,
        shared.entry.app_wiring.deploy_context,
        shared.entry.app_wiring.event_publisher,
    ):
        cached.cache_clear()
    metrics = FakeMetricsClient()
    later = datetime.now(timezone.utc) + timedelta(hours=5)
    ws = shared.entry.app_wiring.workspace()
    ctx = JanitorContext(
        shared.entry.app_wiring.settings(),
        ws,
        AzureMonitorUsage(region=ws.location, credential_factory=object, client_factory=metrics.factory),
        shared.entry.app_wiring.ledger(),
        shared.entry.app_wiring.prepared_store(),
        now=lambda: later,
        events=shared.entry.app_wiring.event_publisher(),
    )
    monkeypatch.setattr(shared.entry.app_wiring, "janitor_context", lambda: ctx)
    return service, metrics, later, topic


def registered(service, blob_service, storage_env) -> str:
    """The sample trained and registered: the next tick starts its deployment. Its endpoint's name."""
    job, tags = submit(blob_service, storage_env, service)
    send(completed(job, tags))
    assert row().status is Status.REGISTERED
    return row().deploy["endpoint"]


def retire_now() -> endpoint_actions.Outcome:
    """`chatft retire`, as the command runs it."""
    from shared.entry.cli.commands.endpoint_actions import context

    return endpoint_actions.retire(context(), SHA[:12], reason="changed my mind")


def puts(service, endpoint: str) -> list:
    return service.calls_to("PUT", rf"/onlineEndpoints/{endpoint}$")


# --- item 1: the row is claimed before anything billable is created ---


def test_retire_between_the_reconcilers_read_and_its_create_leaves_no_endpoint(
    world, blob_service, storage_env, monkeypatch
) -> None:
    """Was: `advance` created the endpoint from the row it read at the start of the tick; its save then lost to
    `chatft retire` ("another worker moved this deployment on"), and the endpoint served with the row `retired`,
    kept by the janitor forever ("ledger status retired: the deployment reconciler owns it")."""
    service, _, _, _ = world
    endpoint = registered(service, blob_service, storage_env)
    adapter = shared.entry.app_wiring.workspace()
    real_get, fired = adapter.get_endpoint, []

    def get_endpoint(name: str):
        # the reconciler's look before its create: the person's retire lands now, after the tick read the row
        if name == endpoint and not fired:
            fired.append(name)
            assert "retired" in retire_now().message
        return real_get(name)

    monkeypatch.setattr(adapter, "get_endpoint", get_endpoint)
    with scoring(service):
        tick()
    assert fired, "the race was staged"
    assert puts(service, endpoint) == [], "a worker whose row was taken never creates the endpoint"
    assert endpoint not in service.online_endpoints.endpoints
    assert row().status is Status.RETIRED
    tick()
    assert puts(service, endpoint) == [] and row().status is Status.RETIRED


def test_retire_between_the_claim_and_the_create_leaves_no_endpoint_after_the_tick(
    world, blob_service, storage_env, monkeypatch
) -> None:
    """The narrowest window: the retire lands after the row was claimed for the create and before the create's
    request. The retire finds no endpoint to delete; the worker, whose next save loses, deletes what it made."""
    service, _, _, _ = world
    endpoint = registered(service, blob_service, storage_env)
    adapter = shared.entry.app_wiring.workspace()
    real_create = adapter.begin_create_endpoint

    def begin_create_endpoint(**kwargs):
        assert row().deploy["creating"]["what"] == f"endpoint {endpoint}", "claimed before the create"
        retire_now()
        return real_create(**kwargs)

    monkeypatch.setattr(adapter, "begin_create_endpoint", begin_create_endpoint)
    with scoring(service):
        tick()
    assert len(puts(service, endpoint)) == 1
    assert endpoint not in service.online_endpoints.endpoints and deleted(service) == [endpoint]
    assert row().status is Status.RETIRED


def test_a_leaked_endpoint_whose_row_is_retired_is_deleted_by_the_janitor_once_idle_and_a_kept_one_is_left(
    world, blob_service, storage_env, monkeypatch
) -> None:
    """Whatever race comes next: an endpoint of ours that no row owns as live or deploying (row retired or
    deploy_failed, row missing, row naming another endpoint) is an orphan, judged like one: deleted once idle
    for the window, or once over JANITOR_MAX_AGE_HOURS whatever its metrics; a kept one is left."""
    service, metrics, later, _ = world
    endpoint = registered(service, blob_service, storage_env)
    retire_now()
    assert row().status is Status.RETIRED
    tags = {**OURS, "chatft_dataset": "chats", "chatft_upload": SHA}
    add(service, endpoint, tags, later - timedelta(hours=3))  # the leak: the row says retired
    add(service, "leaked-kept", {**tags, "chatft_keep": "true"}, later - timedelta(hours=3))
    add(service, "leaked-young", tags, later - timedelta(minutes=10))
    run_timer()
    assert sorted(deleted(service)) == [endpoint]
    assert row().status is Status.RETIRED, "the row already said retired: it is left as it was"
    assert {"leaked-kept", "leaked-young"} <= set(service.online_endpoints.endpoints)

    # unreadable metrics keep an orphan, until the hard cap
    metrics.refuse = 403
    add(service, "leaked-old", tags, later - timedelta(hours=30))
    run_timer()
    assert "leaked-old" not in deleted(service)
    ctx = shared.entry.app_wiring.janitor_context()
    monkeypatch.setattr(ctx, "settings", dataclasses.replace(ctx.settings, janitor_max_age_hours=24.0))
    run_timer()
    assert "leaked-old" in deleted(service) and "leaked-kept" not in deleted(service)


# --- item 2: a live row whose endpoint is gone is retired, with the reason ---


def test_a_live_endpoint_deleted_outside_chatft_is_retired_and_redeploy_then_works(
    world, blob_service, storage_env
) -> None:
    """Was: the row stayed `live` forever, `chatft status` said live and `chatft redeploy` answered "is live ...
    nothing to do". The janitor compares live rows with its one list of the workspace's endpoints."""
    service, metrics, _, topic = world
    endpoint = registered(service, blob_service, storage_env)
    with scoring(service):
        run_until(lambda: row().status is Status.LIVE)
    tick()
    metrics.requests[f"{WORKSPACE}/onlineEndpoints/{endpoint}".lower()] = 7  # in use: the janitor keeps it
    assert topic.types()[-1] == le.LIVE
    lists = len(service.calls_to("GET", r"/onlineEndpoints$"))
    gets = len(service.calls_to("GET", rf"/onlineEndpoints/{endpoint}$"))
    run_timer()  # still there: nothing changes, and the endpoint is not read one by one
    assert row().status is Status.LIVE
    assert len(service.calls_to("GET", r"/onlineEndpoints$")) == lists + 1
    assert len(service.calls_to("GET", rf"/onlineEndpoints/{endpoint}$")) == gets

    service.online_endpoints.begin_delete(name=endpoint)  # someone deletes it in the studio
    run_timer()
    entry = row()
    assert entry.status is Status.RETIRED
    assert entry.deploy["retired"]["reason"].startswith(GONE) and entry.deploy["retired"]["confirmed_gone_at"]
    section = report(blob_service, storage_env)["deployment"]
    assert section["status"] == "retired" and GONE in section["retired"]
    assert topic.types()[-1] == le.RETIRED and GONE in topic.events[-1]["data"]["reason"]
    view = upload_view(entry, report(blob_service, storage_env), name="chats.jsonl", dataset="chats", sha256=SHA)
    assert view.milestones[-1].stage is Stage.RETIRED and GONE in view.milestones[-1].detail  # status's history

    outcome = endpoint_actions.redeploy(_action_context(), SHA[:12])
    assert "redeploying model" in outcome.message
    with scoring(service):
        run_until(lambda: row().status is Status.LIVE)
    assert endpoint in service.online_endpoints.endpoints and len(service.jobs.created) == 1


def test_redeploy_does_not_wait_for_the_janitor_when_the_endpoint_is_gone(world, blob_service, storage_env) -> None:
    """`chatft redeploy` reads the endpoint itself (find: get_endpoint, None only on the SDK's
    ResourceNotFoundError): a `live` row whose endpoint answers 404 is redeployed at once, the gone deployment
    announced as retired, instead of "is live ... nothing to do" until the janitor's next run."""
    service, _, _, topic = world
    endpoint = registered(service, blob_service, storage_env)
    with scoring(service):
        run_until(lambda: row().status is Status.LIVE)
    assert "nothing to do" in endpoint_actions.redeploy(_action_context(), SHA[:12]).message  # still there
    service.online_endpoints.begin_delete(name=endpoint)
    outcome = endpoint_actions.redeploy(_action_context(), SHA[:12])
    assert "redeploying model" in outcome.message
    entry = row()
    assert entry.status is Status.REGISTERED and entry.deploy["redeployed_after"]["reason"].startswith(GONE)
    assert topic.types()[-2:] == [le.RETIRED, le.REDEPLOYED]
    with scoring(service):
        run_until(lambda: row().status is Status.LIVE)
    assert endpoint in service.online_endpoints.endpoints


def _action_context() -> endpoint_actions.ActionContext:
    from shared.entry.cli.commands.endpoint_actions import context

    return context()


def test_a_failed_list_changes_nothing(world, blob_service, storage_env) -> None:
    """A 404 counts only when the list itself succeeded: a list that fails (here a 503 the SDK retries three times,
    then raises) is no evidence that anything is gone."""
    service, _, _, _ = world
    endpoint = registered(service, blob_service, storage_env)
    with scoring(service):
        run_until(lambda: row().status is Status.LIVE)
    service.online_endpoints.begin_delete(name=endpoint)
    service.fail_next("GET", r"/onlineEndpoints$", 503, "ServiceUnavailable", times=10)
    with pytest.raises(HttpResponseError):
        run_timer()
    service._failures.clear()
    assert row().status is Status.LIVE
    run_timer()
    assert row().status is Status.RETIRED


def test_a_confirming_read_that_fails_changes_nothing(world, blob_service, storage_env) -> None:
    """The endpoint missing from the list is read once more before the row changes: only the SDK's
    ResourceNotFoundError (404) counts; a refused read leaves the row live for the next run."""
    service, _, _, _ = world
    endpoint = registered(service, blob_service, storage_env)
    with scoring(service):
        run_until(lambda: row().status is Status.LIVE)
    service.online_endpoints.begin_delete(name=endpoint)
    service.fail_next("GET", rf"/onlineEndpoints/{endpoint}$", 403, "AuthorizationFailed")
    run_timer()
    assert row().status is Status.LIVE
    run_timer()
    assert row().status is Status.RETIRED


def test_the_local_backend_retires_a_live_row_whose_endpoint_is_gone(tmp_path, azurite, monkeypatch) -> None:
    """`chatft dev`'s workspace lists the endpoint folders of its state directory; an endpoint whose folder is
    gone (removed by hand, or a state directory wiped) is gone, while one whose server died is still listed
    (Failed) and is restarted by the next `chatft dev`, so its row stays live."""
    from shared.local.backend import LocalUsageMetrics

    with local_backend(azurite, tmp_path, monkeypatch, "ledger") as local:
        workspace, ledger = local.workspace, local.ledger
        now = datetime.now(timezone.utc)
        ctx = JanitorContext(
            local.settings,
            workspace,
            LocalUsageMetrics(workspace),
            ledger,
            shared.entry.app_wiring.prepared_store(),
            now=lambda: now,
        )
        rows = {}
        for name in ("ep-gone", "ep-stopped"):
            workspace.begin_create_endpoint(name=name, description="d", tags={**OURS})
            rows[name] = _live_row(ledger, name, now)
        workspace.shutdown()  # both servers stop: still listed, as Failed
        assert {e.name for e in workspace.list_endpoints()} == {"ep-gone", "ep-stopped"}
        run_janitor(ctx)
        assert {ledger.get(k).status for k in rows.values()} == {Status.LIVE}
        shutil.rmtree(Path(local.settings.local_state_dir) / "endpoints" / "ep-gone")
        run_janitor(ctx)
        gone, stopped = ledger.get(rows["ep-gone"]), ledger.get(rows["ep-stopped"])
        assert gone.status is Status.RETIRED and gone.deploy["retired"]["reason"].startswith(GONE)
        assert stopped.status is Status.LIVE


def _live_row(ledger, endpoint: str, now: datetime):
    """A row as the reconciler leaves it once its endpoint answered the smoke test."""
    from shared.domain.ledger import UploadKey

    key = UploadKey("local-chats", uuid.uuid4().hex * 2)
    claim = ledger.claim(
        key, upload_etag='"0x1"', source="local-chats.jsonl", cid="c0ffee", now=now, stale_after=timedelta(minutes=5)
    )
    assert claim.acquired
    entry = ledger.get(key)
    entry.status, entry.job_name = Status.LIVE, f"job-{endpoint}"
    entry.deploy = {
        "endpoint": endpoint,
        "deployment": "demo",
        "model_id": "x/models/m/versions/1",
        "model_name": "m",
        "model_version": "1",
        "base_model": "Phi-4",
        "step": "live",
        "live_at": now.isoformat(),
        "started_at": now.isoformat(),
    }
    assert ledger.save(entry)
    return key
