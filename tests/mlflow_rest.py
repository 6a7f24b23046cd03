"""An in-memory MLflow tracking server for Azure ML's tracking host, as an azure-core transport.

It answers the three MLflow REST calls shared/azure/azureml/tracking.py makes, with MLflow's own code
wherever MLflow has it, so the client is tested against the real wire rather than a guess:
  - runs are mlflow.entities Run / RunInfo / RunData / Metric / RunTag objects;
  - `runs/search` filters with mlflow.utils.search_utils.SearchUtils.filter and pages with
    SearchUtils.paginate (what MLflow's own stores do);
  - `metrics/get-history` pages by `max_results` / `page_token` as the REST API documents;
  - bodies are the protos of mlflow.protos.service_pb2 (GetRun / SearchRuns / GetMetricHistory .Response),
    encoded by mlflow.utils.proto_json_utils.message_to_json (MLflow's server: int64 as numbers) or, with
    `encoding="protobuf"`, by protobuf's MessageToJson (int64 as strings, as a generic proto3 server does);
    either way fields at their default (step 0, value 0.0) are omitted, as proto3 JSON does;
  - errors are MlflowException's serialize_as_json() with its get_http_status_code().

Requests must come to https://<location>.api.azureml.ms/mlflow/<route><workspace id>/api/2.0/mlflow/... with a
bearer token: v1.0 is the URL the Azure ML MLflow REST sample builds (azureml-examples
sdk/python/using-mlflow/using-rest-api/using_mlflow_rest_api.ipynb), v2.0 the one azureml-mlflow uses with MLflow 2
and 3 (azureml/mlflow/_store/azureml_reststore.py). `routes` says which this server answers; a request on
another route gets a 404 that is not an MLflow error (no `error_code`), as a host without the route answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.aml_rest import WORKSPACE_ID, RestResponse, _json_body
from tests.transport import InMemoryTransport

API = "/api/2.0/mlflow/"
EXPERIMENT = "5a1f0c3e-0000-4000-8000-000000000001"


@dataclass
class Call:
    method: str
    name: str
    params: dict[str, str]
    body: Any
    authorization: str
    route: str = "v1.0"


@dataclass
class MlflowRestService(InMemoryTransport):
    location: Any = "eastus"
    """The workspace's region, or a callable returning it (the ARM test service's, which tests may move)."""
    credential: Any = None
    """The credential the adapter under test is given (tests.aml_rest.FakeCredential records its scopes)."""
    encoding: str = "mlflow"
    history_page_cap: int = 0
    """When > 0, metrics/get-history returns at most this many points per page whatever max_results asks."""
    runs: dict[str, Any] = field(default_factory=dict)
    history: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    unserved: list[str] = field(default_factory=list)
    fail: dict[str, tuple[int, str]] = field(default_factory=dict)
    """call name -> (HTTP status, raw body) answered instead of the real answer."""
    routes: tuple[str, ...] = ("v2.0", "v1.0")
    """The /mlflow/<route> versions answered; any other version gets a bare 404."""
    refused: list[str] = field(default_factory=list)
    """Requests on a route this server does not answer (they got the 404)."""
    _lock: Any = field(default_factory=threading.RLock)

    @property
    def host(self) -> str:
        location = self.location() if callable(self.location) else self.location
        return f"{location}.api.azureml.ms"

    def prefix(self, route: str) -> str:
        return f"/mlflow/{route}{WORKSPACE_ID}{API}"

    # --- building the store ---

    def add_run(
        self,
        run_id: str,
        *,
        parent: str | None = None,
        curves: dict[str, list[tuple[int, float]]] | None = None,
        start_ms: int = 1_700_000_000_000,
        end_ms: int | None = None,
        status: str = "FINISHED",
    ) -> None:
        """A run (in one experiment, as a pipeline's steps are) logging `curves`: key -> [(step, value)]."""
        from mlflow.entities import Metric, Run, RunData, RunInfo, RunTag

        logged = []
        for key, series in (curves or {}).items():
            metrics = [Metric(key, value, start_ms + 1000 * i, step) for i, (step, value) in enumerate(series)]
            self.history[(run_id, key)] = metrics
            logged += metrics
        tags = [RunTag("mlflow.parentRunId", parent)] if parent else []
        info = RunInfo(run_id, EXPERIMENT, "chatft", status, start_ms, end_ms, "active", run_name=run_id)
        self.runs[run_id] = Run(info, RunData(metrics=logged, tags=tags))

    # --- azure-core transport (plumbing: tests/transport.py) ---

    def send(self, request: Any, **kwargs: Any) -> RestResponse:
        url = urlsplit(request.url)
        route = f"{request.method} {url.scheme}://{url.netloc}{url.path}"
        version = url.path.split("/")[2] if url.path.startswith("/mlflow/") else ""
        if url.scheme != "https" or url.netloc != self.host or not url.path.startswith(self.prefix(version)):
            self.unserved.append(route)
            raise AssertionError(f"the MLflow test server refuses {route}")
        if version not in self.routes:
            self.refused.append(route)
            body = b'{"error": {"code": "NotFound", "message": "The requested resource was not found."}}'
            return RestResponse(request, 404, body, {"Content-Type": "application/json"})
        name = url.path[len(self.prefix(version)) :]
        call = Call(
            request.method,
            name,
            dict(parse_qsl(url.query)),
            _json_body(request),
            request.headers.get("Authorization", ""),
            version,
        )
        with self._lock:
            self.calls.append(call)
            status, content = self._dispatch(call, route)
        return RestResponse(request, status, content, {"Content-Type": "application/json"})

    # --- the API ---

    def _dispatch(self, call: Call, route: str) -> tuple[int, bytes]:
        from mlflow.exceptions import MlflowException

        if call.name in self.fail:
            status, raw = self.fail[call.name]
            return status, raw.encode()
        if not call.authorization.startswith("Bearer "):
            return 401, b'{"error": {"code": "Unauthorized", "message": "no bearer token"}}'
        handlers = {
            ("GET", "runs/get"): self._get_run,
            ("POST", "runs/search"): self._search_runs,
            ("GET", "metrics/get-history"): self._get_metric_history,
        }
        handler = handlers.get((call.method, call.name))
        if handler is None:
            self.unserved.append(route)
            raise AssertionError(f"the MLflow test server has no route for {route}")
        try:
            return 200, self._encode(handler(call))
        except MlflowException as exc:
            return exc.get_http_status_code(), exc.serialize_as_json().encode()

    def _run(self, run_id: str) -> Any:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        if run_id not in self.runs:
            raise MlflowException(f"Run '{run_id}' not found", error_code=RESOURCE_DOES_NOT_EXIST)
        return self.runs[run_id]

    def _get_run(self, call: Call) -> Any:
        from mlflow.protos.service_pb2 import GetRun

        return GetRun.Response(run=self._run(call.params.get("run_id", "")).to_proto())

    def _search_runs(self, call: Call) -> Any:
        from mlflow.protos.service_pb2 import SearchRuns
        from mlflow.utils.search_utils import SearchUtils

        body = call.body or {}
        experiments = set(body.get("experiment_ids") or [])
        runs = [r for r in self.runs.values() if r.info.experiment_id in experiments]
        runs = SearchUtils.filter(runs, body.get("filter") or "")
        page, token = SearchUtils.paginate(runs, body.get("page_token"), int(body.get("max_results") or 1000))
        response = SearchRuns.Response(runs=[r.to_proto() for r in page])
        if token:
            response.next_page_token = token
        return response

    def _get_metric_history(self, call: Call) -> Any:
        from mlflow.protos.service_pb2 import GetMetricHistory

        run_id, key = call.params.get("run_id", ""), call.params.get("metric_key", "")
        self._run(run_id)
        metrics = self.history.get((run_id, key), [])
        start = int(call.params.get("page_token") or 0)
        size = int(call.params.get("max_results") or 25_000)
        if self.history_page_cap:
            size = min(size, self.history_page_cap)
        page = metrics[start : start + size]
        response = GetMetricHistory.Response(metrics=[m.to_proto() for m in page])
        if start + size < len(metrics):
            response.next_page_token = str(start + size)
        return response

    def _encode(self, message: Any) -> bytes:
        if self.encoding == "protobuf":
            from google.protobuf.json_format import MessageToJson

            return MessageToJson(message, preserving_proto_field_name=True).encode()
        from mlflow.utils.proto_json_utils import message_to_json

        return message_to_json(message).encode()


def finetune_tree(
    service: MlflowRestService, job: str, curves: dict[str, list[tuple[int, float]]], hours: float = 2
) -> None:
    """chat_completion_pipeline as Azure ML records it: the pipeline job's run, the pipeline component's run
    beneath it, and its steps beneath that (the fine-tuning step logs the curves)."""
    start = 1_700_000_000_000
    service.add_run(job, start_ms=start, end_ms=start + int(hours * 3600 * 1000))
    service.add_run(f"{job}_component", parent=job, start_ms=start)
    service.add_run(f"{job}_import", parent=f"{job}_component", curves={"runtime": [(0, 12.0)]}, start_ms=start)
    service.add_run(f"{job}_finetune", parent=f"{job}_component", curves=curves, start_ms=start)
