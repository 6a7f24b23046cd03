"""A fake of azure.monitor.querymetrics.MetricsClient at the network boundary: it returns the SDK's
own MetricsQueryResult / Metric / TimeSeriesElement / MetricValue objects and counts its calls.

It fills in only the aggregations asked for *and* documented for the metric: RequestsPerMinute
lists only Average (learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/
microsoft-machinelearningservices-workspaces-onlineendpoints-metrics). What the service does
with another one is not documented; here it gets nothing (None), which a client must not read
as zero requests.

A refused query (`refuse=401` or `403`) goes through the real MetricsClient, whose transport
answers with that status: the exception is the one the SDK itself raises
(ClientAuthenticationError for 401, HttpResponseError for 403).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.monitor.querymetrics import Metric, MetricsClient, MetricsQueryResult, MetricValue, TimeSeriesElement

SUPPORTED_AGGREGATIONS = {"RequestsPerMinute": {"Average"}}
"""From the supported-metrics page: Unit Count, Aggregation Average, time grain PT1M."""


class _Response(HttpResponseImpl):
    def __init__(self, request: Any, status: int, body: dict[str, Any]) -> None:
        super().__init__(
            request=request,
            internal_response=None,
            status_code=status,
            reason={401: "Unauthorized", 403: "Forbidden"}.get(status, "Error"),
            content_type="application/json",
            headers={"content-type": "application/json"},
            stream_download_generator=None,
        )
        self._content = json.dumps(body).encode()
        self._is_closed = True


class RefusingTransport(HttpTransport):
    """Answers every request with `status` and an ARM-style error body."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[Any] = []

    def __enter__(self) -> RefusingTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: Any, **kwargs: Any) -> _Response:
        self.requests.append(request)
        code = {401: "InvalidAuthenticationToken", 403: "AuthorizationFailed"}.get(self.status, "Error")
        message = (
            "The client 'fn-identity' with object id '0000' does not have authorization to perform action "
            "'Microsoft.Insights/metrics/read' over scope '/subscriptions/...'"
        )
        return _Response(request, self.status, {"error": {"code": code, "message": message}})


class _Token:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> AccessTokenInfo:
        return AccessTokenInfo("token", int(time.time()) + 3600)


def refusing_client(status: int, endpoint: str = "https://eastus.metrics.monitor.azure.com") -> MetricsClient:
    """The real MetricsClient, over a transport that refuses with `status` (no retries)."""
    return MetricsClient(endpoint, _Token(), transport=RefusingTransport(status), retry_total=0)


class FakeMetricsClient:
    def __init__(
        self,
        requests: dict[str, int] | None = None,
        *,
        missing: set[str] = frozenset(),
        failing: set[str] = frozenset(),
        refuse: int | None = None,
    ) -> None:
        self.requests = {k.lower(): v for k, v in (requests or {}).items()}
        self.missing = {m.lower() for m in missing}
        self.failing = {f.lower() for f in failing}
        self.refuse = refuse
        self.calls: list[dict[str, Any]] = []
        self.endpoint: str | None = None

    def query_resources(
        self,
        *,
        resource_ids,
        metric_namespace,
        metric_names,
        timespan=None,
        granularity=None,
        aggregations=None,
        **kwargs: Any,
    ):
        self.calls.append(
            {
                "resource_ids": list(resource_ids),
                "namespace": metric_namespace,
                "metrics": list(metric_names),
                "timespan": timespan,
                "granularity": granularity,
                "aggregations": list(aggregations or []),
            }
        )
        if self.refuse is not None:
            return refusing_client(
                self.refuse, self.endpoint or "https://eastus.metrics.monitor.azure.com"
            ).query_resources(
                resource_ids=resource_ids,
                metric_namespace=metric_namespace,
                metric_names=metric_names,
                timespan=timespan,
                granularity=granularity,
                aggregations=aggregations,
            )
        if any(rid.lower() in self.failing for rid in resource_ids):
            error = HttpResponseError(message="metrics throttled")
            error.status_code = 429
            raise error
        now = datetime.now(timezone.utc)
        grain = granularity or timedelta(minutes=1)
        asked = {str(a).lower() for a in aggregations or []}
        served = {a.lower() for a in SUPPORTED_AGGREGATIONS.get(metric_names[0], set())} & asked
        results = []
        for rid in resource_ids:
            if rid.lower() in self.missing:
                continue
            total = self.requests.get(rid.lower(), 0)
            per_minute = [total / (grain.total_seconds() / 60) if i == 0 else 0.0 for i in range(3)]
            points = [
                MetricValue(
                    timestamp=now - grain * i,
                    average=value if "average" in served else None,
                    total=None,  # not documented for RequestsPerMinute
                )
                for i, value in enumerate(per_minute)
            ]
            metric = Metric(
                id=f"{rid}/providers/Microsoft.Insights/metrics/RequestsPerMinute",
                type="Microsoft.Insights/metrics",
                name="RequestsPerMinute",
                unit="Count",
                timeseries=[TimeSeriesElement(data=points)],
                display_description="Requests per minute",
            )
            results.append(MetricsQueryResult(timespan="start/end", metrics=[metric], namespace=metric_namespace))
        return results

    def factory(self, endpoint: str, credential: Any) -> FakeMetricsClient:
        self.endpoint = endpoint
        return self
