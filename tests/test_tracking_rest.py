"""The adapter reads a finished job's curves over the MLflow REST API on Azure ML's tracking host.

The server is tests/mlflow_rest.py: MLflow's own entities, filter, paging and wire encoding. What is pinned:
  - the URL is the workspace's mlflowTrackingUri with azureml:// made https:// plus /api/2.0/mlflow/<call>
    (azureml-examples sdk/python/using-mlflow/using-rest-api/using_mlflow_rest_api.ipynb);
  - the token is asked for https://management.azure.com/.default (the notebook's resource; azureml-mlflow
    _common/_cloud/cloud.py `_get_default_scope`);
  - children are found with `tags.mlflow.parentRunId = '<run id>'` (MicrosoftDocs azure-ai-docs
    how-to-track-experiments-mlflow.md, "Get child (nested) runs");
  - proto3 JSON from either encoder (fields at default omitted, int64 as strings or numbers, NaN as a string);
  - the /mlflow/v2.0 route azureml-mlflow uses is asked first, /mlflow/v1.0 (what the workspace hands out) when
    v2.0 is not served (PyPI azureml-mlflow 1.62.0.post6, azureml/mlflow/_store/azureml_reststore.py
    `get_host_credentials`, and azureml/mlflow/__init__.py, which replaces "/mlflow/v1.0" with "/mlflow/v2.0");
  - metrics/get-history is paged with max_results / page_token -> next_page_token on either route
    (https://mlflow.org/docs/latest/rest-api.html#get-history).
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared.entry.app_wiring
from shared.azure.azureml import tracking
from shared.azure.azureml.tracking import MANAGEMENT_SCOPE, TrackingError, rest_base
from shared.domain.training import points
from tests.aml_rest import WORKSPACE_ID
from tests.mlflow_rest import finetune_tree

JOB = "chatft-chats-0123456789ab-a1"


@pytest.mark.parametrize("encoding", ["mlflow", "protobuf"])
def test_the_finetune_step_is_found_two_levels_down_on_either_wire_encoding(aml, encoding) -> None:
    service, _ = aml
    mlflow = service.mlflow
    mlflow.encoding = encoding
    finetune_tree(
        mlflow,
        JOB,
        {
            "loss": [(0, 0.0), (10, 1.5), (20, float("nan")), (30, 1.0)],  # step 0 and value 0.0 are omitted
            "eval_loss": [(10, 1.25), (30, 0.75)],
            "learning_rate": [(10, 5e-6)],
        },
        hours=1.5,
    )
    metrics = shared.entry.app_wiring.workspace().training_metrics(JOB)
    assert metrics.run_id == f"{JOB}_finetune"
    assert metrics.series == {"loss": [(0, 0.0), (10, 1.5), (30, 1.0)], "eval_loss": [(10, 1.25), (30, 0.75)]}
    assert metrics.duration_seconds == pytest.approx(5400)
    first = mlflow.calls[0]
    assert (first.method, first.name, first.params) == ("GET", "runs/get", {"run_id": JOB})
    searches = [c for c in mlflow.calls if c.name == "runs/search"]
    assert searches[0].body["filter"] == f"tags.mlflow.parentRunId = '{JOB}'"
    assert searches[0].body["experiment_ids"] == [mlflow.runs[JOB].info.experiment_id]
    assert all(c.authorization.startswith("Bearer ") for c in mlflow.calls)
    assert mlflow.credential.scopes and set(mlflow.credential.scopes) == {(MANAGEMENT_SCOPE,)}


@pytest.mark.parametrize("routes", [("v2.0", "v1.0"), ("v1.0",)], ids=["v2.0", "v1.0 only"])
def test_long_histories_are_paged_and_bounded(aml, monkeypatch, routes) -> None:
    service, _ = aml
    mlflow = service.mlflow
    mlflow.routes = routes
    mlflow.history_page_cap = 7
    finetune_tree(mlflow, JOB, {"loss": [(s, 1 / s) for s in range(1, 31)]})
    metrics = shared.entry.app_wiring.workspace().training_metrics(JOB)
    assert [s for s, _ in metrics.series["loss"]] == list(range(1, 31))
    pages = [c for c in mlflow.calls if c.name == "metrics/get-history"]
    assert len(pages) == 5 and {c.route for c in pages} == {routes[0]}  # 7+7+7+7+2
    assert [c.params.get("page_token") for c in pages] == [None, "7", "14", "21", "28"]
    assert all(int(c.params["max_results"]) == tracking.PAGE_SIZE for c in pages)
    monkeypatch.setattr(tracking, "MAX_POINTS", 10)
    assert len(shared.entry.app_wiring.workspace().training_metrics(JOB).series["loss"]) == 10


def test_a_job_whose_steps_logged_no_loss_has_no_curves_but_its_duration(aml) -> None:
    service, _ = aml
    finetune_tree(service.mlflow, JOB, {"train_runtime": [(0, 30.0)]}, hours=0.5)
    metrics = shared.entry.app_wiring.workspace().training_metrics(JOB)
    assert metrics.series == {} and metrics.duration_seconds == pytest.approx(1800)


def test_an_unknown_run_is_the_servers_error_named(aml) -> None:
    """An MLflow 404 (RESOURCE_DOES_NOT_EXIST) is an answer on the v2.0 route, not a missing route: not asked
    again on v1.0."""
    service, _ = aml
    with pytest.raises(TrackingError, match=r"GET runs/get answered HTTP 404 \(RESOURCE_DOES_NOT_EXIST: Run 'nope'"):
        shared.entry.app_wiring.workspace().training_metrics("nope")
    assert [c.route for c in service.mlflow.calls] == ["v2.0"] and service.mlflow.refused == []


def test_the_v2_route_azureml_mlflow_uses_is_asked_first(aml) -> None:
    """The workspace's tracking URI says /mlflow/v1.0; azureml-mlflow (MLflow 2 and 3) talks to /mlflow/v2.0."""
    service, _ = aml
    finetune_tree(service.mlflow, JOB, {"loss": [(1, 1.0), (2, 0.5)]})
    metrics = shared.entry.app_wiring.workspace().training_metrics(JOB)
    assert metrics.series == {"loss": [(1, 1.0), (2, 0.5)]}
    assert {c.route for c in service.mlflow.calls} == {"v2.0"} and service.mlflow.refused == []


def test_a_host_without_the_v2_route_is_read_on_v1(aml) -> None:
    """v2.0 answering a 404 that is not an MLflow error: the same call on v1.0, and v1.0 for every later call."""
    service, _ = aml
    mlflow = service.mlflow
    mlflow.routes = ("v1.0",)
    finetune_tree(mlflow, JOB, {"loss": [(1, 1.0), (2, 0.5)]})
    metrics = shared.entry.app_wiring.workspace().training_metrics(JOB)
    assert metrics.series == {"loss": [(1, 1.0), (2, 0.5)]} and metrics.run_id == f"{JOB}_finetune"
    assert [r.split("/mlflow/")[1][:4] for r in mlflow.refused] == ["v2.0"]  # asked once
    assert {c.route for c in mlflow.calls} == {"v1.0"} and mlflow.calls[0].name == "runs/get"


def test_the_routes_come_from_the_tracking_uri() -> None:
    uri = f"azureml://eastus.api.azureml.ms/mlflow/v1.0{WORKSPACE_ID}"
    assert tracking.rest_bases(uri) == [
        f"https://eastus.api.azureml.ms/mlflow/v2.0{WORKSPACE_ID}",
        f"https://eastus.api.azureml.ms/mlflow/v1.0{WORKSPACE_ID}",
    ]
    assert tracking.rest_bases("https://h/mlflow/v2.0/x") == ["https://h/mlflow/v2.0/x", "https://h/mlflow/v1.0/x"]
    assert tracking.rest_bases("https://h/other") == ["https://h/other"]


@pytest.mark.parametrize(
    ("uri", "base"),
    [
        (
            f"azureml://eastus.api.azureml.ms/mlflow/v1.0{WORKSPACE_ID}",
            f"https://eastus.api.azureml.ms/mlflow/v1.0{WORKSPACE_ID}",
        ),
        ("https://westeurope.api.azureml.ms/mlflow/v2.0/x/", "https://westeurope.api.azureml.ms/mlflow/v2.0/x"),
        ("AzureML://h/p", "https://h/p"),
    ],
)
def test_the_rest_base_is_the_tracking_uri_over_https(uri, base) -> None:
    assert rest_base(uri) == base


@pytest.mark.parametrize("uri", [None, "", "file:///tmp/mlruns", "azureml://", "eastus.api.azureml.ms/mlflow"])
def test_a_tracking_uri_that_is_not_azureml_or_https_is_named(uri) -> None:
    with pytest.raises(TrackingError, match="tracking URI"):
        rest_base(uri)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.dictionaries(st.sampled_from(["key", "value", "step", "timestamp"]), JSON), max_size=10))
def test_points_never_raise_and_keep_only_finite_values(history) -> None:
    result = points(history)
    assert [s for s, _ in result] == sorted({s for s, _ in result})
    assert all(math.isfinite(v) for _, v in result)


def test_points_read_proto3_json_forms() -> None:
    history = [
        {"key": "loss", "timestamp": "1700000000000"},  # step 0, value 0.0 omitted
        {"key": "loss", "value": "NaN", "step": "1", "timestamp": 1},
        {"key": "loss", "value": 2.5, "step": "1", "timestamp": "2"},
        {"key": "loss", "value": "Infinity", "step": 2},
        {"key": "loss", "value": 1.5, "step": 2, "timestamp": 5},
        {"key": "loss", "value": 9.0, "step": 2, "timestamp": 4},  # logged earlier at the same step: loses
    ]
    assert points(history) == [(0, 0.0), (1, 2.5), (2, 1.5)]


def test_the_walk_reads_each_run_once_and_at_most_max_runs(aml, monkeypatch) -> None:
    service, _ = aml
    mlflow = service.mlflow
    mlflow.add_run(JOB, parent=f"{JOB}_b")  # a cycle: the root claims its grandchild as parent
    mlflow.add_run(f"{JOB}_a", parent=JOB)
    mlflow.add_run(f"{JOB}_b", parent=f"{JOB}_a", curves={"loss": [(1, 0.5)]})
    metrics = shared.entry.app_wiring.workspace().training_metrics(JOB)
    assert metrics.run_id == f"{JOB}_b" and metrics.series == {"loss": [(1, 0.5)]}
    # root, a, b: b answers with the root as its child, which is not read again, so the walk ends there
    assert [c.body["filter"].split("= ")[1] for c in mlflow.calls if c.name == "runs/search"] == [
        f"'{JOB}'",
        f"'{JOB}_a'",
        f"'{JOB}_b'",
    ]

    mlflow.calls.clear()
    monkeypatch.setattr(tracking, "MAX_RUNS", 6)
    for i in range(10):
        mlflow.add_run(f"{JOB}_wide{i}", parent=JOB, curves={"loss": [(1, float(i))]})
        for j in range(10):
            mlflow.add_run(f"{JOB}_wide{i}_{j}", parent=f"{JOB}_wide{i}", curves={"loss": [(1, 1.0)]})
    shared.entry.app_wiring.workspace().training_metrics(JOB)
    read = {c.params["run_id"] for c in mlflow.calls if c.name == "metrics/get-history"}
    assert 0 < len(read) <= 6


def test_the_reads_stop_at_the_budget_and_keep_what_they_found(aml, monkeypatch) -> None:
    """Event Grid waits 30 s for the job-events handler (MicrosoftDocs event-grid delivery-and-retry.md), which
    writes this report: past BUDGET_SECONDS no request is started. The clock moves 1 s per request here."""
    service, _ = aml
    finetune_tree(service.mlflow, JOB, {"loss": [(1, 1.0), (2, 0.5)], "eval_loss": [(2, 0.7)]})
    ticks = iter(range(1000))
    monkeypatch.setattr(tracking, "time", SimpleNamespace(monotonic=lambda: float(next(ticks))))
    adapter = shared.entry.app_wiring.workspace()
    # 3.5 s: runs/get, runs/search for the root and the component, then the import step's search is not sent
    metrics = tracking.read_training_metrics(adapter.tracking, JOB, budget=3.5)
    assert metrics.series == {} and any("run tree was read only in part" in n for n in metrics.notes)
    # 6.5 s: the tree (1 get, 4 searches) and the loss history; eval_loss's history is not started
    metrics = tracking.read_training_metrics(adapter.tracking, JOB, budget=6.5)
    assert metrics.series == {"loss": [(1, 1.0), (2, 0.5)]} and metrics.run_id == f"{JOB}_finetune"
    assert metrics.notes == [
        "the metric history was read only in part: GET metrics/get-history not sent: the time budget for this job's metrics is spent"
    ]
    assert adapter.tracking.deadline is None
    with pytest.raises(TrackingError, match="metrics is spent"):
        tracking.read_training_metrics(adapter.tracking, JOB, budget=0)


RUN = st.fixed_dictionaries(
    {
        "info": st.fixed_dictionaries(
            {"run_id": st.text(max_size=12) | JSON, "experiment_id": JSON, "start_time": JSON, "end_time": JSON}
        ),
        "data": st.fixed_dictionaries({"metrics": st.lists(st.fixed_dictionaries({"key": JSON}), max_size=3) | JSON}),
    }
)
ANSWERS = st.one_of(
    st.fixed_dictionaries({"run": RUN}).map(json.dumps),
    st.fixed_dictionaries({"runs": st.lists(RUN, max_size=3), "next_page_token": JSON}).map(json.dumps),
    JSON.map(lambda v: json.dumps(v)),
    st.fixed_dictionaries(
        {"run": st.fixed_dictionaries({"info": JSON, "data": st.fixed_dictionaries({"metrics": JSON})})}
    ).map(json.dumps),
    st.fixed_dictionaries({"runs": st.lists(JSON, max_size=3), "next_page_token": JSON}).map(json.dumps),
    st.fixed_dictionaries({"metrics": st.lists(JSON, max_size=3), "next_page_token": JSON}).map(json.dumps),
    st.text(max_size=20),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(get=ANSWERS, search=ANSWERS, history=ANSWERS, status=st.sampled_from([200, 200, 200, 404, 500]))
def test_whatever_the_store_answers_the_reader_returns_metrics_or_a_tracking_error(get, search, history, status):
    from tests.aml_rest import FakeCredential
    from tests.mlflow_rest import MlflowRestService

    service = MlflowRestService(credential=FakeCredential())
    service.fail = {"runs/get": (status, get), "runs/search": (200, search), "metrics/get-history": (200, history)}
    base = rest_base(f"azureml://{service.host}/mlflow/v1.0{WORKSPACE_ID}")
    client = tracking.MlflowRest(base, service.credential, transport=service)
    try:
        metrics = tracking.read_training_metrics(client, JOB)
    except TrackingError:
        return
    assert all(math.isfinite(v) for series in metrics.series.values() for _, v in series)
    assert len(service.calls) <= 1 + tracking.MAX_RUNS + tracking.MAX_RUNS * 10
