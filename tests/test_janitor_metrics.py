"""Issue 10, item 13: the janitor's metrics path, what happens when Azure Monitor refuses it, and
the hard cap (JANITOR_MAX_AGE_HOURS). Whole runs through the timer are in tests/test_janitor.py.

What the documentation says (also in shared/azure/metrics.py's docstring):

- azure-monitor-querymetrics README (github.com/Azure/azure-sdk-for-python,
  sdk/monitor/azure-monitor-querymetrics/README.md): `query_resources` needs "authorization to
  read metrics data at the Azure subscription level. For example, the Monitoring Reader role on
  the subscription containing the resources to be queried."
- learn.microsoft.com/azure/azure-monitor/metrics/migrate-to-batch-api (MicrosoftDocs/
  azure-monitor-docs articles/azure-monitor/metrics/migrate-to-batch-api.md), "401 authorization
  errors": "Even if users have Monitoring Reader on all the resources being queried in the batch
  API, the request fails if the user doesn't have Monitoring Reader on the subscription itself";
  "403 authorization failures": the Microsoft.Insights resource provider is not registered.
- learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/
  microsoft-machinelearningservices-workspaces-onlineendpoints-metrics (MicrosoftDocs/
  azure-monitor-docs articles/azure-monitor/reference/supported-metrics/
  microsoft-machinelearningservices-workspaces-onlineendpoints-metrics.md): `RequestsPerMinute`,
  unit Count, aggregation Average (only), time grain PT1M.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.azure.metrics import (
    AGGREGATION,
    ROLE,
    AzureMonitorUsage,
    MetricsUnauthorized,
    RequestCounts,
    grain_for,
    subscription_scope,
)
from shared.domain.janitor import Facts, Verdict, judge, plan
from shared.settings import Settings, SettingsError
from tests.events import WORKSPACE
from tests.fake_monitor import FakeMetricsClient, refusing_client

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
WINDOW = timedelta(hours=2)
CAP = timedelta(hours=24)
OURS = {"chatft_managed": "true"}
SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-000000000000"


def usage(fake: FakeMetricsClient) -> AzureMonitorUsage:
    return AzureMonitorUsage(region=lambda: "eastus", credential_factory=object, client_factory=fake.factory)


def ids(n: int) -> list[str]:
    return [f"{WORKSPACE}/onlineEndpoints/ep-{i:03d}" for i in range(n)]


def lines(caplog, step: str) -> list[tuple[int, dict]]:
    prefix = f"chatft {step} "
    return [
        (r.levelno, json.loads(r.getMessage()[len(prefix) :]))
        for r in caplog.records
        if r.getMessage().startswith(prefix)
    ]


# --- the aggregation ---


def test_requests_per_minute_is_read_with_its_documented_aggregation() -> None:
    """Was: aggregation Total, which the supported-metrics page does not list for RequestsPerMinute
    (Unit Count, Aggregation Average, time grain PT1M): a busy endpoint could read as zero."""
    endpoints = ids(3)
    fake = FakeMetricsClient({endpoints[0]: 7, endpoints[1]: 1})
    counts = usage(fake).requests_in_window(endpoints, WINDOW)
    assert AGGREGATION == "Average"
    assert fake.calls[0]["aggregations"] == ["Average"]
    assert fake.calls[0]["granularity"] == timedelta(minutes=1)  # the metric's time grain
    assert counts == {endpoints[0]: 7, endpoints[1]: 1, endpoints[2]: 0}


def test_a_long_window_uses_a_coarser_grain_and_still_counts() -> None:
    assert grain_for(timedelta(hours=2)) == timedelta(minutes=1)
    assert grain_for(timedelta(days=3)) == timedelta(minutes=5)
    assert grain_for(timedelta(days=400)) == timedelta(hours=1)
    [rid] = ids(1)
    fake = FakeMetricsClient({rid: 3})
    assert usage(fake).requests_in_window([rid], timedelta(days=3)) == {rid: 3}
    assert fake.calls[0]["granularity"] == timedelta(minutes=5)


# --- a refused query: loud, with the role and the scope ---


@pytest.mark.parametrize(("status", "raised"), [(403, HttpResponseError), (401, ClientAuthenticationError)])
def test_the_sdk_raises_what_the_adapter_expects(status: int, raised: type) -> None:
    """The real MetricsClient over a transport that answers 401/403: what query_resources raises."""
    with pytest.raises(raised) as caught:
        refusing_client(status).query_resources(
            resource_ids=ids(1), metric_namespace="x", metric_names=["RequestsPerMinute"], timespan=WINDOW
        )
    assert caught.value.status_code == status


@pytest.mark.parametrize("status", [403, 401])
def test_a_refused_query_is_an_error_naming_the_role_and_the_subscription_scope(status: int, caplog) -> None:
    """Was: a WARNING `janitor.metrics_failed` and the endpoints silently absent: every endpoint
    'metrics unknown', kept, billing forever."""
    endpoints = ids(120)  # three batches, one subscription: asked once, all explained
    fake = FakeMetricsClient(refuse=status)
    with caplog.at_level(logging.INFO, logger="chatft"):
        counts = usage(fake).requests_in_window(endpoints, WINDOW)
    assert len(fake.calls) == 1, "the subscription refused: the other batches are not asked"
    assert isinstance(counts, RequestCounts) and dict(counts) == {}
    assert set(counts.unreadable) == set(endpoints)
    reason = counts.unreadable[endpoints[0]]
    assert (
        ROLE == "Monitoring Reader"
        and ROLE in reason
        and f"Microsoft.Insights/metrics/read on {SUBSCRIPTION}" in reason
    )
    assert "'chatft app reader' from azd" in reason  # the least role: the one infra/app/metrics-rbac.bicep assigns
    assert f"HTTP {status}" in reason
    [(level, line)] = lines(caplog, "janitor.metrics_unauthorized")
    assert level == logging.ERROR
    assert line["role"] == "Monitoring Reader" and line["scope"] == SUBSCRIPTION and line["status"] == status
    assert line["fix"].startswith("azd provision (assigns the custom role 'chatft app reader'")
    assert f'--role "Monitoring Reader" --scope {SUBSCRIPTION}' in line["fix"]
    assert "AuthorizationFailed" in line["error"] or "InvalidAuthenticationToken" in line["error"]
    assert not lines(caplog, "janitor.metrics_failed")


def test_a_throttled_batch_is_explained_too_but_not_as_a_role_problem(caplog) -> None:
    endpoints = ids(60)
    fake = FakeMetricsClient(failing={endpoints[3]})  # 429 for the first batch only
    with caplog.at_level(logging.INFO, logger="chatft"):
        counts = usage(fake).requests_in_window(endpoints, WINDOW)
    assert set(counts) == set(endpoints[50:])
    assert counts.unreadable[endpoints[0]] == "metrics query failed (HttpResponseError 429)"
    assert not lines(caplog, "janitor.metrics_unauthorized")


def test_a_credential_that_cannot_sign_in_is_an_error_too(caplog) -> None:
    class NoToken:
        def query_resources(self, **kwargs):
            raise ClientAuthenticationError(message="ManagedIdentityCredential authentication unavailable")

    with caplog.at_level(logging.INFO, logger="chatft"):
        counts = AzureMonitorUsage(
            region=lambda: "eastus", credential_factory=object, client_factory=lambda e, c: NoToken()
        ).requests_in_window(ids(1), WINDOW)
    assert "no token for Azure Monitor" in counts.unreadable[ids(1)[0]]
    [(level, _)] = lines(caplog, "janitor.metrics_failed")
    assert level == logging.ERROR


def test_the_doctor_probe_raises_the_role_and_scope() -> None:
    with pytest.raises(MetricsUnauthorized) as caught:
        usage(FakeMetricsClient(refuse=403)).probe(ids(1)[0], timedelta(minutes=5))
    assert (caught.value.role, caught.value.scope, caught.value.status) == ("Monitoring Reader", SUBSCRIPTION, 403)
    assert "Microsoft.Insights" in str(caught.value)  # the 403 the batch-API page describes
    usage(FakeMetricsClient()).probe(ids(1)[0], timedelta(minutes=5))  # readable: no error


def test_the_scope_is_the_endpoints_subscription() -> None:
    assert subscription_scope(f"{WORKSPACE}/onlineEndpoints/ep") == SUBSCRIPTION
    assert subscription_scope("/SUBSCRIPTIONS/abc/resourceGroups/x") == "/subscriptions/abc"


def test_an_unknown_decision_says_why() -> None:
    why = f"HTTP 403 from Azure Monitor: the function app's identity needs Monitoring Reader on {SUBSCRIPTION}"
    decision = judge(facts(requests=None, metrics_error=why), NOW, WINDOW)
    assert decision.verdict is Verdict.UNKNOWN and decision.action == "keep"
    assert "Monitoring Reader" in decision.reason and SUBSCRIPTION in decision.reason


# --- the hard cap ---


def facts(**kw) -> Facts:
    base = {"name": "ep", "tags": OURS, "created_at": NOW - timedelta(hours=30), "ledger_status": "live"}
    return Facts(**{**base, **kw})


@pytest.mark.parametrize("requests", [None, 0, 40], ids=["metrics unknown", "idle", "busy"])
def test_an_endpoint_older_than_the_cap_goes_whatever_its_metrics(requests) -> None:
    [decision] = plan([facts(requests=requests)], NOW, WINDOW, max_deletes=5, dry_run=False, max_age=CAP)
    assert decision.verdict is Verdict.OVER_AGE and decision.action == "delete"
    assert "JANITOR_MAX_AGE_HOURS" in decision.reason and "24h00m" in decision.reason and "30h00m" in decision.reason


@pytest.mark.parametrize(
    ("case", "verdict"),
    [
        (facts(tags={"CHATFT_MANAGED": "TRUE", "Chatft_Keep": "Yes"}, requests=None), Verdict.PROTECTED),
        (facts(tags={**OURS, "CHATFT_KEEP": "1"}, requests=None), Verdict.PROTECTED),
        (facts(tags={"team": "x"}, requests=None), Verdict.UNMANAGED),
        (facts(tags={"chatft_managed": "yes"}, requests=None), Verdict.UNMANAGED),  # ours is exactly true
        (facts(created_at=NOW - timedelta(hours=23), requests=None), Verdict.UNKNOWN),
        (facts(created_at=None, live_at=None, requests=None), Verdict.YOUNG),  # age unknown: no cap
        (facts(ledger_status="deploying", requests=None), Verdict.NOT_LIVE),  # the reconciler's
        (facts(provisioning_state="Deleting", requests=None), Verdict.DELETING),
    ],
    ids=[
        "protected, any case",
        "protected by 1",
        "unmanaged",
        "managed is exactly true",
        "under the cap",
        "age unknown",
        "not live in the ledger",
        "already deleting",
    ],
)
def test_the_cap_spares_what_it_must(case: Facts, verdict: Verdict) -> None:
    [decision] = plan([case], NOW, WINDOW, max_deletes=5, dry_run=False, max_age=CAP)
    assert decision.verdict is verdict
    assert decision.action == "keep"


def test_the_cap_is_measured_from_creation_not_from_going_live() -> None:
    """Redeployed (live again an hour ago) on an endpoint created 30 hours ago: over the cap."""
    case = facts(live_at=NOW - timedelta(hours=1), requests=None)
    assert judge(case, NOW, WINDOW, max_age=CAP).verdict is Verdict.OVER_AGE
    assert judge(case, NOW, WINDOW).verdict is Verdict.YOUNG  # without a cap: young, as before
    no_created = facts(created_at=None, live_at=NOW - timedelta(hours=25), requests=None)
    assert judge(no_created, NOW, WINDOW, max_age=CAP).verdict is Verdict.OVER_AGE  # the ledger's live time


def test_the_cap_counts_against_max_deletes_and_respects_dry_run() -> None:
    old = [facts(name=f"old-{i}", created_at=NOW - timedelta(hours=25 + i), requests=None) for i in range(4)]
    decisions = plan(old, NOW, WINDOW, max_deletes=2, dry_run=False, max_age=CAP)
    assert sorted(d.name for d in decisions if d.action == "delete") == ["old-2", "old-3"]  # the oldest
    assert sorted(d.action for d in decisions) == ["capped", "capped", "delete", "delete"]
    dry = plan(old, NOW, WINDOW, max_deletes=2, dry_run=True, max_age=CAP)
    assert sorted(d.action for d in dry) == ["capped", "capped", "would-delete", "would-delete"]


def test_no_cap_by_default() -> None:
    env = {"ML_BACKEND": "none"}
    assert Settings.from_env(env).janitor_max_age is None
    assert Settings.from_env({**env, "JANITOR_MAX_AGE_HOURS": ""}).janitor_max_age is None
    assert Settings.from_env({**env, "JANITOR_MAX_AGE_HOURS": "36"}).janitor_max_age == timedelta(hours=36)
    assert Settings.from_env({**env, "JANITOR_MAX_AGE_HOURS": "0.5"}).janitor_max_age == timedelta(minutes=30)
    for bad in ("0", "-3", "soon", "inf", "1e9"):
        with pytest.raises(SettingsError, match="JANITOR_MAX_AGE_HOURS"):
            Settings.from_env({**env, "JANITOR_MAX_AGE_HOURS": bad})
    [decision] = plan([facts(requests=None)], NOW, WINDOW, max_deletes=5, dry_run=False)
    assert decision.verdict is Verdict.UNKNOWN and decision.action == "keep"


fact_sets = st.lists(
    st.builds(
        Facts,
        name=st.uuids().map(str),
        tags=st.tuples(
            st.sampled_from(["chatft_managed", "CHATFT_MANAGED"]),
            st.sampled_from(["true", "TRUE", "false", None]),
            st.sampled_from(["chatft_keep", "Chatft_Keep"]),
            st.sampled_from(["true", "yes", "1", "no", None]),
        ).map(lambda t: {k: v for k, v in ((t[0], t[1]), (t[2], t[3])) if v is not None}),
        provisioning_state=st.sampled_from([None, "Succeeded", "Deleting"]),
        created_at=st.one_of(st.none(), st.integers(0, 3000).map(lambda m: NOW - timedelta(minutes=m))),
        ledger_status=st.sampled_from([None, "live", "deploying", "registered", "retired", "deploy_failed"]),
        live_at=st.one_of(st.none(), st.integers(0, 3000).map(lambda m: NOW - timedelta(minutes=m))),
        requests=st.one_of(st.none(), st.integers(0, 3)),
    ),
    max_size=30,
    unique_by=lambda f: f.name,
)


@settings(max_examples=300, deadline=None)
@given(fact_sets, st.integers(0, 6), st.booleans(), st.integers(1, 48).map(lambda h: timedelta(hours=h)))
def test_with_a_cap_the_janitor_still_never_deletes_what_it_must_not(
    endpoints: list[Facts], cap: int, dry_run: bool, max_age: timedelta
) -> None:
    decisions = plan(endpoints, NOW, WINDOW, max_deletes=cap, dry_run=dry_run, max_age=max_age)
    by_name = {f.name: f for f in endpoints}
    deleted = [d for d in decisions if d.action == "delete"]
    assert len(deleted) <= cap and (not dry_run or not deleted)
    for d in deleted:
        f = by_name[d.name]
        tags = {k.lower(): v.lower() for k, v in f.tags.items()}
        assert tags.get("chatft_managed") == "true"
        assert tags.get("chatft_keep") not in ("true", "yes", "1", "y", "on")
        assert f.ledger_status not in ("registered", "deploying"), "the reconciler's"
        assert (f.provisioning_state or "").lower() != "deleting"
        created = f.created_at or f.live_at
        idle = f.requests == 0 and NOW - max(m for m in (f.created_at, f.live_at) if m) >= WINDOW
        assert idle or (created is not None and NOW - created >= max_age)
