"""Usage metrics of online endpoints from Azure Monitor (azure-monitor-querymetrics), imported lazily.

`MetricsClient.query_resources` takes many resource ids per call, so endpoints are queried in
batches. A batch that fails leaves its endpoints out of the answer: the janitor then keeps them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from shared.logs import log_step

NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
METRIC = "RequestsPerMinute"
BATCH = 50
"""Resource ids per query_resources call (the batch API's limit)."""
GRANULARITY = timedelta(minutes=5)


class UsageMetrics(Protocol):
    def requests_in_window(self, endpoint_ids: Sequence[str], window: timedelta) -> dict[str, int]:
        """Total requests per endpoint resource id over the last `window`; ids it could not read are absent."""


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

    def requests_in_window(self, endpoint_ids: Sequence[str], window: timedelta) -> dict[str, int]:
        wanted = {rid.lower(): rid for rid in endpoint_ids}
        totals: dict[str, int] = {}
        ids = list(wanted.values())
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            try:
                results = self.client().query_resources(
                    resource_ids=batch,
                    metric_namespace=NAMESPACE,
                    metric_names=[METRIC],
                    timespan=window,
                    granularity=GRANULARITY,
                    aggregations=["Total"],
                )
            except Exception as exc:
                log_step(
                    "janitor.metrics_failed",
                    endpoints=len(batch),
                    error=f"{type(exc).__name__}: {exc}",
                    level=logging.WARNING,
                )
                continue
            for result in results:
                for metric in result.metrics:
                    original = wanted.get(_resource_of(metric.id))
                    if original is None:
                        continue
                    count = sum(int(value.total or 0) for series in metric.timeseries for value in series.data)
                    totals[original] = totals.get(original, 0) + count
        return totals
