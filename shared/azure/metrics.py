"""Usage metrics of online endpoints from Azure Monitor (azure-monitor-querymetrics), imported lazily.

`MetricsClient.query_resources` takes many resource ids per call, so endpoints are queried in
batches. A batch that fails leaves its endpoints out of the answer, with the reason: the janitor
then keeps them (verdict metrics-unknown) and says why, in its log and in the upload's report.

What the documentation says, and the choices made here:

- Path: the *batch* metrics API (`metrics:getBatch`, which `MetricsClient.query_resources`
  calls), one call per 50 endpoints. Its authorisation is at **subscription scope only**: "The
  user must be authorized to read monitoring data at the Azure subscription level. For example,
  the Monitoring Reader role on the subscription to be queried" (the package's README,
  github.com/Azure/azure-sdk-for-python sdk/monitor/azure-monitor-querymetrics/README.md, also
  in .venv/.../azure_monitor_querymetrics-1.0.0.dist-info/METADATA); and "Because the
  metrics:getBatch API is a subscription level API, users must have the Monitoring Reader
  permission for the queried subscription ... Even if users have Monitoring Reader on all the
  resources being queried in the batch API, the request fails if the user doesn't have
  Monitoring Reader on the subscription itself" (learn.microsoft.com/azure/azure-monitor/metrics/
  migrate-to-batch-api, "401 authorization errors"; MicrosoftDocs/azure-monitor-docs
  articles/azure-monitor/metrics/migrate-to-batch-api.md). So a role on the workspace or the
  resource group is *not* enough: the function app's identity needs **Monitoring Reader on
  /subscriptions/<id>** (the subscription of the endpoints' resource ids). The per-resource API
  (azure-monitor-query's `MetricsQueryClient.query_resource`, Monitoring Reader on the resource)
  would need another package and one ARM call per endpoint, which is what throttling and the
  batch API exist to avoid; it was not chosen. Monitoring Reader is `*/read` over the whole
  subscription, so `azd up` grants the one action the query needs (with metric definitions and
  the region's VM sizes) through a custom role instead (infra/app/metrics-rbac.bicep).
- Failures: the same page says a 401 means the role is missing on the subscription and a 403
  that the Microsoft.Insights resource provider is not registered in it ("403 authorization
  failures"). The SDK maps 401 to `azure.core.exceptions.ClientAuthenticationError` and raises
  `HttpResponseError` for any other status (`_operations/_operations.py`: `error_map = {401:
  ClientAuthenticationError, ...}`, then `raise HttpResponseError(response=...)`). Both become
  `MetricsUnauthorized`, naming the role and the exact scope to assign, logged at ERROR.
- Metric: `RequestsPerMinute` in namespace `Microsoft.MachineLearningServices/workspaces/
  onlineEndpoints`, unit Count, aggregation **Average** (the only one listed), time grain PT1M,
  dimensions deployment, statusCode, statusCodeClass, modelStatusCode
  (learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/
  microsoft-machinelearningservices-workspaces-onlineendpoints-metrics; MicrosoftDocs/
  azure-monitor-docs articles/azure-monitor/reference/supported-metrics/
  microsoft-machinelearningservices-workspaces-onlineendpoints-metrics.md). `Total` is not listed
  for it (this module asked for Total until issue 10). The requests in the window are estimated
  as the sum over the time grains of Average x the grain in minutes, rounded up: zero exactly
  when no request was recorded (all that the janitor decides on), an estimate otherwise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from shared.logs import log_step

NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
METRIC = "RequestsPerMinute"
AGGREGATION = "Average"
"""The only aggregation the supported-metrics page lists for RequestsPerMinute (unit Count)."""
BATCH = 50
"""Resource ids per query_resources call (the batch API's limit)."""
GRAINS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 30, 60))
"""PT1M is the metric's time grain; a coarser one keeps a long window under MAX_POINTS per series."""
MAX_POINTS = 1440
"""Our own bound (a day of minutes per series), not a documented limit of the API."""
PERMISSION = "Microsoft.Insights/metrics/read"
"""What the batch metrics API checks, on the subscription (see the module docstring)."""
APP_ROLE = "chatft app reader"
"""The custom role `azd up` assigns the app for PERMISSION and nothing broader (infra/app/metrics-rbac.bicep)."""
ROLE = "Monitoring Reader"
"""The built-in role that grants PERMISSION (with every other read): what a person assigns without azd."""


class UsageMetrics(Protocol):
    def requests_in_window(self, endpoint_ids: Sequence[str], window: timedelta) -> dict[str, int]:
        """Requests per endpoint resource id over the last `window`; ids it could not read are
        absent. It may return a `RequestCounts`, whose `unreadable` says why each absent id is."""


class RequestCounts(dict[str, int]):
    """Requests per endpoint resource id, and why the missing ones could not be read."""

    def __init__(self, counts: dict[str, int] | None = None, unreadable: dict[str, str] | None = None) -> None:
        super().__init__(counts or {})
        self.unreadable: dict[str, str] = dict(unreadable or {})


class MetricsUnauthorized(Exception):
    """Azure Monitor refused the batch query (401/403): the identity lacks `role` on `scope`."""

    def __init__(self, status: int, scope: str, detail: str = "") -> None:
        self.status, self.scope, self.role, self.detail = status, scope, ROLE, detail
        super().__init__(
            f"Azure Monitor refused the metrics query (HTTP {status}): the function app's identity needs "
            f"{PERMISSION} on {scope} (`azd provision` assigns it the custom role {APP_ROLE!r}; without azd, "
            f"{ROLE}). The batch metrics API checks the subscription: a role on the workspace or resource group "
            "is not enough"
            + ("; if it has the role, register the Microsoft.Insights resource provider there" if status == 403 else "")
            + (f". Service said: {detail}" if detail else "")
        )

    @property
    def reason(self) -> str:
        """Short and stable (no trace ids), for decisions and reports."""
        return (
            f"HTTP {self.status} from Azure Monitor: the function app's identity needs {PERMISSION} on {self.scope} "
            f"(role {APP_ROLE!r} from azd, or {self.role})"
        )


def subscription_scope(resource_id: str) -> str:
    """'/subscriptions/<id>/resourceGroups/...' -> '/subscriptions/<id>' (the batch API's scope)."""
    parts = resource_id.strip("/").split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == "subscriptions":
            return f"/subscriptions/{parts[i + 1]}"
    return resource_id


def grain_for(window: timedelta) -> timedelta:
    """The finest grain that keeps the window under MAX_POINTS points per series."""
    return next((g for g in GRAINS if window / g <= MAX_POINTS), GRAINS[-1])


def _unauthorized_status(exc: BaseException) -> int | None:
    """401 or 403 from the service; None for anything else (throttling, a token that could not
    be had at all: ClientAuthenticationError without a response is the identity's problem)."""
    status = getattr(exc, "status_code", None)
    if status is None and getattr(exc, "response", None) is not None:
        status = getattr(exc.response, "status_code", None)
    return status if status in (401, 403) else None


def _no_token(exc: BaseException) -> bool:
    """ClientAuthenticationError without a response: raised by the credential (azure-identity's
    CredentialUnavailableError is one) before any request was sent."""
    from azure.core.exceptions import ClientAuthenticationError

    return isinstance(exc, ClientAuthenticationError) and getattr(exc, "response", None) is None


def _detail(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _default_credential() -> Any:
    from shared.azure.identity import credential

    return credential()


def _resource_of(metric_id: str) -> str:
    """'/subscriptions/.../onlineEndpoints/ep/providers/Microsoft.Insights/metrics/X' -> the endpoint's id."""
    lowered = metric_id.lower()
    cut = lowered.find("/providers/microsoft.insights")
    return lowered[:cut] if cut >= 0 else lowered


class AzureMonitorUsage:
    def __init__(
        self,
        region: Callable[[], str],
        *,
        credential_factory: Callable[[], Any] = _default_credential,
        client_factory: Callable[[str, Any], Any] | None = None,
    ) -> None:
        self._region = region
        self._credential_factory = credential_factory
        self._client_factory = client_factory
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            endpoint = f"https://{self._region().lower().replace(' ', '')}.metrics.monitor.azure.com"
            if self._client_factory is not None:
                self._client = self._client_factory(endpoint, self._credential_factory())
            else:
                from azure.monitor.querymetrics import MetricsClient

                self._client = MetricsClient(endpoint, self._credential_factory())
        return self._client

    def _query(self, batch: Sequence[str], window: timedelta) -> list[Any]:
        """One batch call; 401/403 raise MetricsUnauthorized naming the role and scope."""
        grain = grain_for(window)
        try:
            return self.client().query_resources(
                resource_ids=list(batch),
                metric_namespace=NAMESPACE,
                metric_names=[METRIC],
                timespan=window,
                granularity=grain,
                aggregations=[AGGREGATION],
            )
        except Exception as exc:
            status = _unauthorized_status(exc)
            if status is None:
                raise
            raise MetricsUnauthorized(status, subscription_scope(batch[0]), _detail(exc)) from exc

    def probe(self, resource_id: str, window: timedelta) -> None:
        """One query as the janitor makes it (for `chatft doctor`): raises MetricsUnauthorized, or
        whatever else failed."""
        self._query([resource_id], window)

    def requests_in_window(self, endpoint_ids: Sequence[str], window: timedelta) -> RequestCounts:
        wanted = {rid.lower(): rid for rid in endpoint_ids}
        found = RequestCounts()
        ids = list(wanted.values())
        minutes = grain_for(window).total_seconds() / 60
        refused: dict[str, MetricsUnauthorized] = {}
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            scope = subscription_scope(batch[0])
            if scope in refused:  # the same subscription refuses every batch: ask once a run
                found.unreadable.update(dict.fromkeys(batch, refused[scope].reason))
                continue
            try:
                results = self._query(batch, window)
            except MetricsUnauthorized as exc:
                refused[scope] = exc
                found.unreadable.update(dict.fromkeys(batch, exc.reason))
                log_step(
                    "janitor.metrics_unauthorized",
                    role=exc.role,
                    scope=exc.scope,
                    status=exc.status,
                    endpoints=len(batch),
                    error=str(exc),
                    fix=f"azd provision (assigns the custom role {APP_ROLE!r} on {exc.scope}); without azd: "
                    f'az role assignment create --assignee <function app principal id> --role "{exc.role}" '
                    f"--scope {exc.scope}",
                    consequence="these endpoints are never found idle: they bill until deleted by hand "
                    "(or by JANITOR_MAX_AGE_HOURS)",
                    level=logging.ERROR,
                )
                continue
            except Exception as exc:
                status = getattr(exc, "status_code", None)
                no_token = _no_token(exc)
                why = "no token for Azure Monitor: the function app's identity could not sign in" if no_token else ""
                found.unreadable.update(
                    dict.fromkeys(
                        batch, why or f"metrics query failed ({type(exc).__name__}{f' {status}' if status else ''})"
                    )
                )
                log_step(
                    "janitor.metrics_failed",
                    endpoints=len(batch),
                    error=f"{type(exc).__name__}: {_detail(exc)}",
                    level=logging.ERROR if no_token else logging.WARNING,
                )
                continue
            for result in results:
                for metric in result.metrics:
                    original = wanted.get(_resource_of(metric.id))
                    if original is None:
                        continue
                    per_minute = sum(
                        value.average or 0.0 for series in metric.timeseries for value in series.data
                    )  # Average of RequestsPerMinute over each grain
                    found[original] = found.get(original, 0) + math.ceil(round(per_minute * minutes, 6))
            for rid in batch:
                if rid not in found:
                    found.unreadable[rid] = f"Azure Monitor returned no {METRIC} for it"
        return found
