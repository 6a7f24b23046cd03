"""The idle-endpoint janitor: pure decisions, a safety property, metric batching, and full runs
through the indexed timer function with the ledger on Azurite."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from azure.ai.ml.entities import ManagedOnlineEndpoint, Workspace
from hypothesis import given, settings
from hypothesis import strategies as st

import function_app
import shared.entry.app_wiring
from shared.azure.metrics import AzureMonitorUsage
from shared.domain.janitor import Facts, Verdict, judge, plan
from shared.domain.ledger import Status
from shared.flows.janitor import JanitorContext
from tests.deploy_flow import completed, report, row, run_until, send, submit
from tests.events import WORKSPACE
from tests.fake_monitor import FakeMetricsClient
from tests.hosting import find_function, indexed_functions, invoke_blob_trigger
from tests.scoring_server import ScoringServer

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
WINDOW = timedelta(hours=2)
OURS = {"chatft_managed": "true"}


def facts(**kw) -> Facts:
    base = {"name": "ep", "tags": OURS, "created_at": NOW - timedelta(hours=5), "ledger_status": "live", "requests": 0}
    return Facts(**{**base, **kw})


@pytest.mark.parametrize(
    ("case", "verdict"),
    [
        (facts(tags={}), Verdict.UNMANAGED),
        (facts(tags={"chatft_managed": "false"}), Verdict.UNMANAGED),
        (facts(tags={**OURS, "chatft_keep": "true"}), Verdict.PROTECTED),
        (facts(created_at=NOW - timedelta(minutes=30)), Verdict.YOUNG),
        (facts(live_at=NOW - timedelta(minutes=30)), Verdict.YOUNG),  # old endpoint, but only just live: later wins
        (facts(requests=3), Verdict.BUSY),
        (facts(requests=0), Verdict.IDLE),
        (facts(requests=None), Verdict.UNKNOWN),
        (facts(ledger_status="deploying"), Verdict.NOT_LIVE),
        (facts(ledger_status="registered"), Verdict.NOT_LIVE),
        (facts(ledger_status=None), Verdict.IDLE),  # ours by tag, no ledger row: an orphan we may remove
        (facts(ledger_status="retired"), Verdict.IDLE),  # a row that lost a race with its endpoint: an orphan
        (facts(ledger_status="deploy_failed"), Verdict.IDLE),
        (facts(created_at=None), Verdict.YOUNG),  # missing createdAt and no live time: age unknown, kept
        (facts(created_at=None, live_at=NOW - timedelta(hours=3)), Verdict.IDLE),
        (facts(provisioning_state="Deleting"), Verdict.DELETING),
    ],
    ids=[
        "untagged",
        "tag false",
        "keep",
        "young",
        "just live",
        "busy",
        "idle",
        "metrics error",
        "ledger deploying",
        "ledger registered",
        "no ledger row",
        "ledger retired",
        "ledger deploy_failed",
        "missing createdAt",
        "missing createdAt, live long ago",
        "deleting",
    ],
)
def test_decisions(case: Facts, verdict: Verdict) -> None:
    assert judge(case, NOW, WINDOW).verdict is verdict


def test_an_orphan_says_why_it_is_judged_like_a_live_endpoint() -> None:
    """Issue 19 item 1: an endpoint whose row lost a race (retired, deploy_failed) or that no row names."""
    assert judge(facts(ledger_status="retired"), NOW, WINDOW).reason.startswith("orphan (its ledger row is retired)")
    assert judge(facts(ledger_status=None), NOW, WINDOW).reason.startswith("orphan (no ledger row deploys it)")
    assert judge(facts(), NOW, WINDOW).reason.startswith("no requests in the last 2h00m")
    capped = judge(facts(ledger_status="retired", requests=None), NOW, WINDOW, max_age=timedelta(hours=4))
    assert capped.verdict is Verdict.OVER_AGE and capped.reason.startswith("orphan (its ledger row is retired)")


@pytest.mark.parametrize(
    "keep",
    [
        {"Chatft_Keep": "true"},
        {"CHATFT_KEEP": "true"},
        {"chatft_keep": "yes"},
        {"chatft_keep": "1"},
        {"ChatFT_keep": "TRUE"},
    ],
    ids=str,
)
@pytest.mark.parametrize("managed", ["chatft_managed", "Chatft_Managed", "CHATFT_MANAGED"])
def test_a_keep_tag_protects_whatever_its_case_or_spelling_of_true(keep: dict, managed: str) -> None:
    """Was: only chatft_keep=true protected. Azure Resource Manager: "The tag name can have a
    maximum of 512 characters and is case insensitive" (Az.Resources Set-AzTag/New-AzTag help;
    learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations)."""
    idle = facts(tags={managed: "true", **keep})
    assert judge(idle, NOW, WINDOW).verdict is Verdict.PROTECTED
    assert judge(facts(tags={managed: "true"}), NOW, WINDOW).verdict is Verdict.IDLE


@pytest.mark.parametrize("value", ["false", "no", "0", ""])
def test_a_keep_tag_that_says_no_does_not_protect(value: str) -> None:
    assert judge(facts(tags={**OURS, "Chatft_Keep": value}), NOW, WINDOW).verdict is Verdict.IDLE


fact_sets = st.lists(
    st.builds(
        Facts,
        name=st.uuids().map(str),
        tags=st.tuples(
            st.sampled_from(["chatft_managed", "Chatft_Managed", "CHATFT_MANAGED"]),
            st.sampled_from(["true", "false", "TRUE", None]),
            st.sampled_from(["chatft_keep", "Chatft_Keep", "CHATFT_KEEP"]),
            st.sampled_from(["true", "false", "yes", "1", "Y", "no", None]),
        ).map(lambda t: {k: v for k, v in ((t[0], t[1]), (t[2], t[3])) if v is not None}),
        provisioning_state=st.sampled_from([None, "Succeeded", "Deleting", "Updating"]),
        created_at=st.one_of(st.none(), st.integers(0, 600).map(lambda m: NOW - timedelta(minutes=m))),
        ledger_status=st.sampled_from([None, "live", "deploying", "registered", "retired", "deploy_failed"]),
        live_at=st.one_of(st.none(), st.integers(0, 600).map(lambda m: NOW - timedelta(minutes=m))),
        requests=st.one_of(st.none(), st.integers(0, 3)),
    ),
    max_size=30,
    unique_by=lambda f: f.name,
)


@settings(max_examples=300, deadline=None)
@given(fact_sets, st.integers(0, 6), st.booleans())
def test_the_janitor_never_deletes_what_it_must_not(endpoints: list[Facts], cap: int, dry_run: bool) -> None:
    decisions = plan(endpoints, NOW, WINDOW, max_deletes=cap, dry_run=dry_run)
    by_name = {f.name: f for f in endpoints}
    deleted = [d for d in decisions if d.action == "delete"]
    assert len(deleted) <= cap and (not dry_run or not deleted)
    for d in deleted:
        f = by_name[d.name]
        tags = {k.lower(): v.lower() for k, v in f.tags.items()}  # Azure tag names are case-insensitive
        assert tags.get("chatft_managed") == "true"
        assert tags.get("chatft_keep") not in ("true", "yes", "1", "y", "on")
        assert f.requests == 0  # known, and zero
        assert f.ledger_status not in ("registered", "deploying"), "the reconciler's"
        assert (f.provisioning_state or "").lower() != "deleting"
        moments = [m for m in (f.created_at, f.live_at) if m is not None]
        assert moments and NOW - max(moments) >= WINDOW


def test_metrics_are_batched_and_read_back_per_endpoint() -> None:
    ids = [f"{WORKSPACE}/onlineEndpoints/ep-{i:03d}" for i in range(200)]
    fake = FakeMetricsClient({ids[7]: 4, ids[150].upper(): 2}, missing={ids[9]})
    usage = AzureMonitorUsage(region=lambda: "West Europe", credential_factory=object, client_factory=fake.factory)
    counts = usage.requests_in_window(ids, WINDOW)
    assert len(fake.calls) <= 4 and sum(len(c["resource_ids"]) for c in fake.calls) == 200
    assert fake.endpoint == "https://westeurope.metrics.monitor.azure.com"
    call = fake.calls[0]
    assert call["namespace"] == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
    assert call["metrics"] == ["RequestsPerMinute"] and call["timespan"] == WINDOW
    assert call["aggregations"] == ["Average"]  # the documented one: see tests/test_janitor_metrics.py
    assert counts[ids[7]] == 4 and counts[ids[150]] == 2 and counts[ids[0]] == 0
    assert ids[9] not in counts  # unreadable: the janitor keeps it


def test_a_failed_metrics_batch_leaves_its_endpoints_unknown() -> None:
    ids = [f"{WORKSPACE}/onlineEndpoints/ep-{i:03d}" for i in range(60)]
    fake = FakeMetricsClient(failing={ids[3]})
    counts = AzureMonitorUsage(
        region=lambda: "eastus", credential_factory=object, client_factory=fake.factory
    ).requests_in_window(ids, WINDOW)
    assert set(counts) == set(ids[50:])


# --- whole runs through the indexed timer function ---


def endpoint(name: str, tags: dict[str, str], created: datetime) -> ManagedOnlineEndpoint:
    return ManagedOnlineEndpoint(
        name=name,
        tags=tags,
        provisioning_state="Succeeded",
        traffic={"demo": 100},
        properties={"createdAt": created.strftime("%Y-%m-%dT%H:%M:%S.%f%z")},
        scoring_uri="http://127.0.0.1:9/score",
    )


@pytest.fixture
def janitor(aml, monkeypatch):
    """The runtime's janitor, with the fake Azure Monitor client and a clock 5 hours ahead."""
    workspace, _ = aml
    workspace.workspaces = type(
        "Workspaces", (), {"get": staticmethod(lambda name: Workspace(name=name, location="westeurope"))}
    )()
    metrics = FakeMetricsClient()
    ws = shared.entry.app_wiring.workspace()
    later = datetime.now(timezone.utc) + timedelta(hours=5)
    ctx = JanitorContext(
        shared.entry.app_wiring.settings(),
        ws,
        AzureMonitorUsage(region=ws.location, credential_factory=object, client_factory=metrics.factory),
        shared.entry.app_wiring.ledger(),
        shared.entry.app_wiring.prepared_store(),
        now=lambda: later,
    )
    monkeypatch.setattr(shared.entry.app_wiring, "janitor_context", lambda: ctx)
    return workspace, metrics, later


def run_timer(past_due: bool = False) -> None:
    from azure.functions.meta import Datum
    from azure.functions.timer import TimerRequestConverter

    timer = TimerRequestConverter.decode(Datum(json.dumps({"IsPastDue": past_due}), "json"), trigger_metadata={})
    find_function(function_app.app, "endpoint_janitor").get_user_function()(timer)


def add(workspace, name: str, tags: dict[str, str], created: datetime) -> None:
    workspace.online_endpoints.endpoints[name] = endpoint(name, tags, created)


def deleted(workspace) -> list[str]:
    return [name for op, name in workspace.online_endpoints.calls if op == "delete"]


def test_idle_live_endpoint_is_retired_and_nothing_else_is_touched(janitor, blob_service, storage_env, caplog) -> None:
    workspace, metrics, later = janitor
    live = _live_upload(janitor, blob_service, storage_env)
    long_ago = later - timedelta(hours=6)
    add(workspace, "someone-elses", {"team": "x"}, long_ago)
    add(workspace, "kept-on-purpose", {**OURS, "chatft_keep": "true"}, long_ago)
    add(workspace, "fresh-one", OURS, later - timedelta(minutes=10))
    add(workspace, "busy-one", OURS, long_ago)
    add(workspace, "no-metrics", OURS, long_ago)
    metrics.requests[f"{WORKSPACE}/onlineEndpoints/busy-one".lower()] = 12
    metrics.missing.add(f"{WORKSPACE}/onlineEndpoints/no-metrics".lower())
    with caplog.at_level(logging.INFO, logger="chatft"):
        run_timer()
    assert deleted(workspace) == [live]
    entry = row()
    assert entry.status is Status.RETIRING, "asked, not yet seen gone"
    assert "no requests in the last 2h00m" in entry.deploy["retired"]["reason"]
    assert entry.deploy["retired"]["idle_minutes_measured"] == 120
    assert report(blob_service, storage_env)["deployment"]["status"] == "retiring"
    lines = [
        json.loads(r.getMessage().split(" ", 2)[2])
        for r in caplog.records
        if r.getMessage().startswith("chatft janitor.decision")
    ]
    verdicts = {line["endpoint"]: (line["verdict"], line["action"]) for line in lines}
    assert verdicts == {
        live: ("idle", "delete"),
        "someone-elses": ("unmanaged", "keep"),
        "kept-on-purpose": ("protected", "keep"),
        "fresh-one": ("young", "keep"),
        "busy-one": ("busy", "keep"),
        "no-metrics": ("metrics-unknown", "keep"),
    }
    assert next(line for line in lines if line["endpoint"] == "busy-one")["requests"] == 12
    run_timer()  # the next run no longer finds it: confirmed gone, and nothing else is touched
    assert deleted(workspace) == [live]
    assert row().status is Status.RETIRED and row().deploy["retired"]["confirmed_gone_at"]
    section = report(blob_service, storage_env)["deployment"]
    assert section["status"] == "retired"
    # hours from live to confirmed gone, priced at the deployed size's list price (one instance)
    assert re.fullmatch(
        r"\d+\.\d\d h up, about \$\d+\.\d\d \(1 instance of Standard_\w+ at \$[\d.]+/h list price\)",
        section["endpoint_hours"],
    ), section["endpoint_hours"]
    run_timer()
    assert deleted(workspace) == [live]


def _live_upload(janitor, blob_service, storage_env) -> str:
    workspace, _, _ = janitor
    with ScoringServer(key="k", deployment="demo") as server:
        workspace.online_endpoints.scoring_uri, workspace.online_endpoints.key = server.url, "k"
        job, tags = submit(blob_service, storage_env, workspace)
        send(completed(job, tags))
        run_until(lambda: row().status is Status.LIVE)
    return row().deploy["endpoint"]


def test_a_failed_delete_is_reported_and_asked_again_and_never_stops_the_run(
    janitor, blob_service, storage_env
) -> None:
    """Was: `retired` as soon as begin_delete returned, so a delete that failed left a GPU endpoint
    billing, kept forever as "owned by the reconciler"; and one 409 aborted the whole run."""
    from azure.core.exceptions import HttpResponseError

    workspace, _, later = janitor
    live = _live_upload(janitor, blob_service, storage_env)
    add(workspace, "idle-orphan", OURS, later - timedelta(hours=9))
    conflict = HttpResponseError(message="Conflict: an operation is in progress on the endpoint")
    conflict.status_code = 409
    real_delete = workspace.online_endpoints.begin_delete

    def delete(name=None, **kwargs):
        if name == live:
            raise conflict
        return real_delete(name=name, **kwargs)

    workspace.online_endpoints.begin_delete = delete
    run_timer()
    assert deleted(workspace) == ["idle-orphan"], "the other endpoint was still deleted"
    entry = row()
    assert entry.status is Status.RETIRING and "Conflict" in entry.deploy["retired"]["last_error"]
    assert "last request failed" in report(blob_service, storage_env)["deployment"]["retiring"]
    run_timer()  # still failing: asked again, still retiring, never "retired" while it exists
    assert row().status is Status.RETIRING and row().deploy["retired"]["delete_requests"] == 2
    workspace.online_endpoints.begin_delete = real_delete
    run_timer()
    assert live in deleted(workspace) and row().status is Status.RETIRING and not row().deploy["retired"]["last_error"]
    run_timer()
    assert row().status is Status.RETIRED


def test_a_delete_azure_ml_dropped_is_asked_again(janitor, blob_service, storage_env) -> None:
    """The delete was accepted, but later the endpoint is back in a normal state (the operation
    failed on the service side): the next run asks again, whatever the endpoint's traffic."""
    workspace, metrics, later = janitor
    live = _live_upload(janitor, blob_service, storage_env)
    run_timer()
    assert row().status is Status.RETIRING
    add(
        workspace,
        live,
        {**OURS, "chatft_dataset": "chats", "chatft_upload": row().key.sha256},
        later - timedelta(hours=6),
    )
    metrics.requests[f"{WORKSPACE}/onlineEndpoints/{live}".lower()] = 50  # busy or not, it was to go
    run_timer()
    assert deleted(workspace).count(live) == 2


def test_dry_run_deletes_nothing(janitor, monkeypatch) -> None:
    workspace, _, later = janitor
    ctx = shared.entry.app_wiring.janitor_context()
    monkeypatch.setattr(ctx, "settings", dataclasses.replace(ctx.settings, janitor_dry_run=True))
    add(workspace, "idle-orphan", OURS, later - timedelta(hours=4))
    decisions = shared.entry.app_wiring.janitor_handler()
    assert [d.action for d in decisions] == ["would-delete"] and deleted(workspace) == []


def test_deletions_are_capped_per_run(janitor) -> None:
    workspace, _, later = janitor
    for i in range(8):
        add(workspace, f"idle-{i}", OURS, later - timedelta(hours=3 + i))
    run_timer()
    assert len(deleted(workspace)) == 5
    assert set(deleted(workspace)) == {f"idle-{i}" for i in range(3, 8)}  # the oldest first
    run_timer()
    assert len(deleted(workspace)) == 8


def test_a_late_timer_is_logged_and_still_runs(janitor, caplog) -> None:
    workspace, _, later = janitor
    add(workspace, "idle-orphan", OURS, later - timedelta(hours=4))
    with caplog.at_level(logging.WARNING, logger="chatft"):
        run_timer(past_due=True)
    assert any("janitor.past_due" in r.getMessage() for r in caplog.records)
    assert deleted(workspace) == ["idle-orphan"]


def test_timer_metadata_comes_from_a_setting() -> None:
    [binding] = next(
        json.loads(f.get_function_json())["bindings"]
        for f in indexed_functions(function_app.app)
        if f.get_function_name() == "endpoint_janitor"
    )
    assert binding["type"] == "timerTrigger" and binding["schedule"] == "%JANITOR_SCHEDULE%"
    assert binding["runOnStartup"] is False and binding["useMonitor"] is True


def test_a_reupload_of_a_retired_upload_redeploys_its_model_without_retraining(
    janitor, blob_service, storage_env
) -> None:
    """Was: after the janitor retired an endpoint, uploading the same file again did nothing."""
    from tests.deploy_flow import DATA

    workspace, _, _ = janitor
    live = _live_upload(janitor, blob_service, storage_env)
    model = row().deploy["model_id"]
    run_timer()
    run_timer()
    assert row().status is Status.RETIRED and live not in workspace.online_endpoints.endpoints
    with ScoringServer(key="k", deployment="demo") as server:
        workspace.online_endpoints.scoring_uri, workspace.online_endpoints.key = server.url, "k"
        blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "chats.jsonl").upload_blob(DATA, overwrite=True)
        invoke_blob_trigger(function_app.app, "ingest_upload", "chats.jsonl")  # same bytes, a new ETag
        entry = row()
        assert entry.status is Status.REGISTERED and entry.deploy["redeployed_after"]["reason"]
        assert "redeploying model" in report(blob_service, storage_env)["submission"]["repeated_upload"]
        run_until(lambda: row().status is Status.LIVE)
    assert len(workspace.jobs.created) == 1, "no second training job"
    assert row().deploy["model_id"] == model and row().deploy["endpoint"] == live
    invoke_blob_trigger(function_app.app, "ingest_upload", "chats.jsonl")  # the same delivery again: nothing
    assert row().status is Status.LIVE


# --- issue 10, item 13: refused metrics are loud; the hard cap (see tests/test_janitor_metrics.py) ---

SUBSCRIPTION = WORKSPACE.split("/resourceGroups/")[0]


def _decision_lines(caplog) -> dict[str, dict]:
    prefix = "chatft janitor.decision "
    found = [json.loads(r.getMessage()[len(prefix) :]) for r in caplog.records if r.getMessage().startswith(prefix)]
    return {line["endpoint"]: line for line in found}


def test_refused_metrics_are_an_error_a_reason_and_a_report_line_never_a_silent_keep(
    janitor, blob_service, storage_env, caplog
) -> None:
    """Was: the 403 (no Monitoring Reader on the subscription: the batch API is authorised there
    only) was a WARNING, the decision said only "could not be read", and the report said nothing,
    so a GPU endpoint billed forever, silently."""
    workspace, metrics, _ = janitor
    live = _live_upload(janitor, blob_service, storage_env)
    metrics.refuse = 403  # the real MetricsClient raises HttpResponseError(403)
    before = report(blob_service, storage_env)
    with caplog.at_level(logging.INFO, logger="chatft"):
        run_timer()
    assert deleted(workspace) == []
    refused = [r for r in caplog.records if "janitor.metrics_unauthorized" in r.getMessage()]
    assert [r.levelno for r in refused] == [logging.ERROR]
    assert '"role":"Monitoring Reader"' in refused[0].getMessage()
    assert f'"scope":"{SUBSCRIPTION}"' in refused[0].getMessage()
    decision = _decision_lines(caplog)[live]
    assert (decision["verdict"], decision["action"]) == ("metrics-unknown", "keep")
    assert "Monitoring Reader" in decision["reason"] and SUBSCRIPTION in decision["reason"]
    section = report(blob_service, storage_env)["deployment"]
    line = section["janitor"]
    assert "usage could not be read" in line and "Monitoring Reader" in line and SUBSCRIPTION in line
    assert "nothing will delete it" in line  # no JANITOR_MAX_AGE_HOURS set
    assert section["status"] == "live" and section["endpoint"] == live  # the rest of the section is kept
    revision = report(blob_service, storage_env)["revision"]
    assert revision == before["revision"] + 1
    run_timer()  # the same cause: the report is not written again
    assert report(blob_service, storage_env)["revision"] == revision
    metrics.refuse = None  # the role was assigned
    metrics.requests[f"{WORKSPACE}/onlineEndpoints/{live}".lower()] = 3
    run_timer()
    assert "janitor" not in report(blob_service, storage_env)["deployment"]
    assert deleted(workspace) == []


def test_the_age_cap_deletes_old_endpoints_whose_metrics_are_unknown(janitor, monkeypatch, caplog) -> None:
    workspace, metrics, later = janitor
    ctx = shared.entry.app_wiring.janitor_context()
    monkeypatch.setattr(ctx, "settings", dataclasses.replace(ctx.settings, janitor_max_age_hours=24.0))
    metrics.refuse = 403
    old = later - timedelta(hours=30)
    add(workspace, "old-orphan", OURS, old)
    add(workspace, "old-kept", {"Chatft_Managed": "TRUE", "CHATFT_KEEP": "Yes"}, old)
    add(workspace, "old-not-ours", {"team": "x"}, old)
    add(workspace, "under-the-cap", OURS, later - timedelta(hours=10))
    with caplog.at_level(logging.INFO, logger="chatft"):
        run_timer()
    assert deleted(workspace) == ["old-orphan"]
    lines = _decision_lines(caplog)
    assert (lines["old-orphan"]["verdict"], lines["old-orphan"]["action"]) == ("over-age", "delete")
    assert "JANITOR_MAX_AGE_HOURS" in lines["old-orphan"]["reason"]
    assert lines["old-kept"]["verdict"] == "protected" and lines["old-not-ours"]["verdict"] == "unmanaged"
    assert lines["under-the-cap"]["verdict"] == "metrics-unknown" and lines["under-the-cap"]["action"] == "keep"
    assert "Monitoring Reader" in lines["under-the-cap"]["reason"]
