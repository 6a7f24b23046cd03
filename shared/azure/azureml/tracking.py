"""A finished job's training metrics from Azure ML's MLflow tracking store, over the MLflow REST API.

The documented way to read a job's metrics is MLflow (MicrosoftDocs azure-ai-docs
how-to-track-experiments-mlflow.md: "The Azure Machine Learning Python SDK v2 does not provide native
logging or tracking capabilities ... use MLflow"; the same page: "You can also query and search experiments
and runs by using the MLflow REST API", pointing to azureml-examples
sdk/python/using-mlflow/using-rest-api/using_mlflow_rest_api.ipynb). That notebook fixes the wire:
  - the base URL is the workspace's MLflow tracking URI with `azureml://` replaced by `https://`
    (`ml_client.workspaces.get(name).mlflow_tracking_uri`, e.g.
    azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/.../workspaces/<ws>);
  - requests go to `<base>/api/2.0/mlflow/<method>` as in https://mlflow.org/docs/latest/rest-api.html;
  - the bearer token is for the resource https://management.azure.com (azureml-mlflow 1.62
    `_common/_cloud/cloud.py` `_get_default_scope` asks the same: `<resource manager>/.default`).

The route: the workspace hands out `.../mlflow/v1.0/...`, but azureml-mlflow talks to `/mlflow/v2.0` for any
MLflow 2 or 3 client (PyPI azureml-mlflow 1.62.0.post6, `azureml/mlflow/_store/azureml_reststore.py`
`get_host_credentials`: `api_version = "/mlflow/v2.0"`; `azureml/mlflow/__init__.py` replaces "/mlflow/v1.0"
with "/mlflow/v2.0" in the workspace's tracking URI). So v2.0 is asked first and v1.0 only if v2.0 answers 404
without an MLflow error (an MLflow error, such as RESOURCE_DOES_NOT_EXIST for a run, is an answer, not a missing
route); the route that answered is kept for the client's later calls. Both page `metrics/get-history` the same
way (https://mlflow.org/docs/latest/rest-api.html#get-history: `max_results` and `page_token` in, `metrics` and
`next_page_token` out), followed by `_pages`.

Why not `mlflow-skinny` + `azureml-mlflow` in the app: together they add about 60 packages and 170 MB to
the deployed app (FastAPI, uvicorn, databricks-sdk and protobuf among them) for three read calls, and
azureml-mlflow's credential chain (`_internal/utils.py`, `get_service_context_from_tracking_url_default_auth`)
ends in InteractiveBrowserCredential and DeviceCodeCredential, which would wait for a person inside a
function host. Here the app's own credential (shared.azure.identity) is the only one used.

The run tree: a pipeline job's name is its run id; its steps are child runs carrying the tag
`mlflow.parentRunId` ("Get child (nested) runs" in the same page names Azure ML pipelines as the typical
case). chat_completion_pipeline is itself a pipeline component, so the fine-tuning step is a grandchild:
the tree is walked MAX_DEPTH levels down and the run that logged a loss, with the most points, is taken.

Wire tolerance (proto3 JSON, what both MLflow's server and a generic protobuf encoder emit): fields at
their default (step 0, value 0.0, an empty list) are omitted; int64 fields may be strings; NaN and
infinities are the strings "NaN", "Infinity", "-Infinity". Memory is bounded: at most MAX_RUNS runs in all
and MAX_POINTS points per metric are read, whatever the store holds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from shared.domain.training import TrainingMetrics, curve_keys, points

MANAGEMENT_SCOPE = "https://management.azure.com/.default"
API = "api/2.0/mlflow"
ROUTES = ("/mlflow/v2.0", "/mlflow/v1.0")
"""Azure ML's MLflow routes, in the order they are tried (azureml-mlflow's first)."""
RUN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,256}")
"""What a run id looks like (a job name, a GUID): only such a string goes into a search filter."""
MAX_DEPTH = 3
MAX_RUNS = 200
PAGE_SIZE = 1000
MAX_POINTS = 100_000
CONNECTION_TIMEOUT = 5
READ_TIMEOUT = 15
BUDGET_SECONDS = 20.0
"""All of one job's reads: the report is written from the job-events handler, and Event Grid waits 30 s for
an answer (MicrosoftDocs event-grid delivery-and-retry.md), so the walk stops at the budget, keeping what
it found, rather than have the delivery time out and be retried."""
DENIED_HINT = (
    "the app's identity needs read access to the workspace's runs "
    "(Microsoft.MachineLearningServices/workspaces/experiments/runs/read, in AzureML Data Scientist)"
)


class TrackingError(Exception):
    """The tracking store refused or failed a request; the message names the call and the service's answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth trying again later: the store was busy or failing, not refusing."""
        from shared.azure.azureml.errors import TRANSIENT_STATUS

        return self.status in TRANSIENT_STATUS


class TrackingBudgetSpent(TrackingError):
    """BUDGET_SECONDS passed: what was read so far is used."""

    @property
    def transient(self) -> bool:
        return True


def rest_base(tracking_uri: str | None) -> str:
    """The https base of the MLflow REST API for a workspace tracking URI (azureml:// or https://)."""
    uri = (tracking_uri or "").strip().rstrip("/")
    scheme, sep, rest = uri.partition("://")
    if not sep or not rest or scheme.lower() not in ("azureml", "https"):
        raise TrackingError(
            f"the workspace's MLflow tracking URI {tracking_uri!r} is not an azureml:// or https:// URI"
        )
    return f"https://{rest}"


def rest_bases(tracking_uri: str | None) -> list[str]:
    """The bases to try for a workspace tracking URI: on the v2.0 route, then the v1.0 route (ROUTES)."""
    base = rest_base(tracking_uri)
    for route in ROUTES:
        if route + "/" in base + "/":
            return [base.replace(route, other, 1) for other in ROUTES]
    return [base]


class MlflowRest:
    """The three MLflow REST calls the report needs, on azure-core (already deployed with the app)."""

    def __init__(self, base_url: str | Sequence[str], credential: Any, *, transport: Any = None) -> None:
        from azure.core import PipelineClient
        from azure.core.pipeline import policies

        bases = [base_url] if isinstance(base_url, str) else list(base_url)
        self._bases = [b.rstrip("/") for b in bases]
        self.base_url = self._bases[0]
        """The base in use: the first of the bases that did not answer a bare 404."""
        self.deadline: float | None = None
        """time.monotonic() after which no request is started (set per job by read_training_metrics)."""
        pipeline = [
            policies.HeadersPolicy({"Accept": "application/json"}),
            policies.UserAgentPolicy(sdk_moniker="chatft-tracking"),
            policies.RetryPolicy(retry_total=1, timeout=BUDGET_SECONDS),
            policies.BearerTokenCredentialPolicy(credential, MANAGEMENT_SCOPE),
            policies.NetworkTraceLoggingPolicy(),
        ]
        extra = {"transport": transport} if transport is not None else {}
        self._client = PipelineClient(base_url=self.base_url, policies=pipeline, **extra)

    def _call(self, method: str, name: str, *, params: dict[str, Any] | None = None, body: Any = None) -> dict:
        from azure.core.rest import HttpRequest

        while True:
            left = READ_TIMEOUT if self.deadline is None else self.deadline - time.monotonic()
            if left <= 0:
                raise TrackingBudgetSpent(f"{method} {name} not sent: the time budget for this job's metrics is spent")
            url = f"{self.base_url}/{API}/{name}"
            request = HttpRequest(method, url, params=params, json=body)
            response = self._client.send_request(
                request, connection_timeout=CONNECTION_TIMEOUT, read_timeout=min(READ_TIMEOUT, max(left, 1.0))
            )
            try:
                payload = response.json() if response.content else {}
            except ValueError:
                payload = None
            if response.status_code == 404 and len(self._bases) > 1 and not _mlflow_error(payload):
                self._bases.pop(0)  # this route is not served here: the next one, for this call and the later ones
                self.base_url = self._bases[0]
                continue
            break
        if response.status_code != 200 or not isinstance(payload, dict):
            raise TrackingError(
                _failure(method, name, response.status_code, payload, response.text()), response.status_code
            )
        return payload

    def get_run(self, run_id: str) -> dict[str, Any]:
        run = self._call("GET", "runs/get", params={"run_id": run_id}).get("run")
        if not isinstance(run, dict):
            raise TrackingError(f"GET runs/get for run {run_id}: the answer has no run")
        return run

    def child_runs(self, experiment_id: str, parent_run_id: str) -> list[dict[str, Any]]:
        """Runs whose tag mlflow.parentRunId is `parent_run_id` (at most MAX_RUNS)."""
        query = f"tags.mlflow.parentRunId = '{parent_run_id}'"

        def page(room: int, token: str | None) -> dict[str, Any]:
            body = {"experiment_ids": [experiment_id], "filter": query, "max_results": room}
            return {"body": {**body, "page_token": token} if token else body}

        return self._pages("POST", "runs/search", "runs", MAX_RUNS, page)

    def metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        """Every logged value of one metric (at most MAX_POINTS), in MLflow's Metric JSON form."""

        def page(room: int, token: str | None) -> dict[str, Any]:
            params = {"run_id": run_id, "metric_key": key, "max_results": min(PAGE_SIZE, room)}
            return {"params": {**params, "page_token": token} if token else params}

        return self._pages("GET", "metrics/get-history", "metrics", MAX_POINTS, page)

    def _pages(
        self, method: str, name: str, items: str, limit: int, page: Callable[[int, str | None], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Follow `next_page_token` until the store stops or `limit` items are read."""
        found: list[dict[str, Any]] = []
        token = None
        while len(found) < limit:
            answer = self._call(method, name, **page(limit - len(found), token))
            batch = [item for item in _list(answer.get(items)) if isinstance(item, dict)]
            found += batch
            token = answer.get("next_page_token") if isinstance(answer.get("next_page_token"), str) else None
            if not token or not batch:
                break
        return found[:limit]


def _mlflow_error(payload: Any) -> bool:
    """An MLflow error body (`{"error_code": ..., "message": ...}`, MlflowException.serialize_as_json)."""
    return isinstance(payload, dict) and bool(payload.get("error_code"))


def _failure(method: str, name: str, status: int, payload: Any, text: str) -> str:
    detail = ""
    if isinstance(payload, dict):
        code, message = payload.get("error_code"), payload.get("message")
        error = payload.get("error")
        if isinstance(error, dict):  # an Azure-style error envelope
            code, message = code or error.get("code"), message or error.get("message")
        detail = ": ".join(str(p) for p in (code, message) if p)
    detail = detail or " ".join(text.split())[:300]
    hint = f"; {DENIED_HINT}" if status in (401, 403) else ""
    return f"{method} {name} answered HTTP {status}" + (f" ({detail})" if detail else "") + hint


def _list(value: Any) -> list[Any]:
    """A JSON array, or nothing: a store that answers something else for a list gives no items."""
    return value if isinstance(value, list) else []


def _info(run: dict[str, Any]) -> dict[str, Any]:
    info = run.get("info")
    return info if isinstance(info, dict) else {}


def _metric_keys(run: dict[str, Any]) -> list[str]:
    data = run.get("data") if isinstance(run.get("data"), dict) else {}
    keys = (str(m["key"]) for m in _list(data.get("metrics")) if isinstance(m, dict) and m.get("key"))
    return list(dict.fromkeys(keys))  # a store may list a key once per logged value


def _millis(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number / 1000 if number > 0 else None


def _run_id(run: dict[str, Any]) -> str:
    info = _info(run)
    return str(info.get("run_id") or info.get("run_uuid") or "")


def _loss_runs(client: MlflowRest, root: dict[str, Any], notes: list[str]) -> list[dict[str, Any]]:
    """Runs that logged a loss, in the root's tree down to MAX_DEPTH, reading at most MAX_RUNS runs in all
    (each once, whatever cycles or repeats the store answers with). Out of time: what was found so far."""
    found: list[dict[str, Any]] = []
    try:
        _walk(client, root, found)
    except TrackingBudgetSpent as exc:
        notes.append(f"the run tree was read only in part: {exc}")
    return found


def _walk(client: MlflowRest, root: dict[str, Any], found: list[dict[str, Any]]) -> None:
    level = [root]
    experiment = str(_info(root).get("experiment_id") or "")
    seen = {_run_id(root)}
    for depth in range(MAX_DEPTH + 1):
        found += [r for r in level if any("loss" in k.lower() for k in _metric_keys(r))]
        if depth == MAX_DEPTH or not experiment:
            break
        children: list[dict[str, Any]] = []
        for run in level:
            if len(seen) >= MAX_RUNS:
                break
            if not RUN_ID.fullmatch(_run_id(run)):
                continue  # not an id to put in a filter (a store's odd answer): its children are not looked for
            for child in client.child_runs(experiment, _run_id(run)):
                if _run_id(child) not in seen and len(seen) < MAX_RUNS:
                    seen.add(_run_id(child))
                    children.append(child)
        level = children
        if not level:
            break


def read_training_metrics(client: MlflowRest, job_name: str, budget: float = BUDGET_SECONDS) -> TrainingMetrics:
    client.deadline = time.monotonic() + budget
    try:
        root = client.get_run(job_name)
        info = _info(root)
        base = {"started_at": _millis(info.get("start_time")), "ended_at": _millis(info.get("end_time"))}
        notes: list[str] = []
        best: dict[str, list[tuple[int, float]]] = {}
        best_id = _run_id(root) or job_name
        for run in _loss_runs(client, root, notes):
            run_id, series = _run_id(run), {}
            try:
                for key in curve_keys(_metric_keys(run)):
                    series[key] = points(client.metric_history(run_id, key))
            except TrackingBudgetSpent as exc:
                notes.append(f"the metric history was read only in part: {exc}")
            if sum(map(len, series.values())) > sum(map(len, best.values())):
                best, best_id = series, run_id
            if notes and notes[-1].startswith("the metric history"):
                break
        return TrainingMetrics(best, step_label="step", run_id=best_id, notes=notes, **base)
    finally:
        client.deadline = None
