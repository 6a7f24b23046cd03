"""A fake of azure.monitor.querymetrics.MetricsClient at the network boundary: it returns the SDK's
own MetricsQueryResult / Metric / TimeSeriesElement / MetricValue objects and counts its calls."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.monitor.querymetrics import Metric, MetricsQueryResult, MetricValue, TimeSeriesElement


class FakeMetricsClient:
    def __init__(
        self,
        requests: dict[str, int] | None = None,
        *,
        missing: set[str] = frozenset(),
        failing: set[str] = frozenset(),
    ) -> None:
        self.requests = {k.lower(): v for k, v in (requests or {}).items()}
        self.missing = {m.lower() for m in missing}
        self.failing = {f.lower() for f in failing}
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
                "aggregations": list(aggregations or []),
            }
        )
        if any(rid.lower() in self.failing for rid in resource_ids):
            error = HttpResponseError(message="metrics throttled")
            error.status_code = 429
            raise error
        now = datetime.now(timezone.utc)
        results = []
        for rid in resource_ids:
            if rid.lower() in self.missing:
                continue
            total = self.requests.get(rid.lower(), 0)
            points = [
                MetricValue(timestamp=now - timedelta(minutes=5 * i), total=float(total if i == 0 else 0))
                for i in range(3)
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
