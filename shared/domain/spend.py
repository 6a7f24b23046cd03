"""The month's estimated spend, read off the ledger rows: pure, no I/O.

An estimate from list prices, the way the report counts: a job's GPU hours (from its submission to its end,
times the GPUs it asked for) at GPU_HOURLY_PRICE_USD, and an endpoint's hours up (from live to retired, or
now) at its size's hourly list price (shared.domain.deploy.sku). Only the part of each interval inside the
month counts. Azure's invoice is the truth; this is what MONTHLY_BUDGET_USD is compared with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from shared.domain.deploy.sku import price_of
from shared.domain.ledger import LedgerEntry, Status
from shared.domain.moments import aware_time

JOB_GPUS = "job_gpus"
"""`entry.extra` key: the GPUs the job asked for (nodes x GPUs per node), recorded at submission."""
JOB_STARTED = "job_started_at"
"""`entry.extra` key: when the job was submitted (ISO 8601)."""
JOB_ENDED = "job_ended_at"
"""`entry.extra` key: when the job was seen to end, or was canceled (ISO 8601)."""
WARN_AT = 0.8
"""The share of MONTHLY_BUDGET_USD at which `chatft.budget.warning` goes out (once a month)."""


@dataclass(frozen=True)
class UploadSpend:
    dataset: str
    sha256: str
    source: str
    status: str
    gpu_hours: float
    gpu_usd: float | None
    """None: GPU_HOURLY_PRICE_USD is empty (hours only)."""
    endpoint_hours: float
    endpoint_usd: float | None
    """None: the endpoint's size has no list price in shared.domain.deploy.sku."""
    instance_type: str

    @property
    def usd(self) -> float:
        return (self.gpu_usd or 0.0) + (self.endpoint_usd or 0.0)


@dataclass(frozen=True)
class MonthSpend:
    month: str
    """YYYY-MM (UTC)."""
    uploads: tuple[UploadSpend, ...]
    gpu_price: float | None
    budget: float | None

    @property
    def usd(self) -> float:
        return sum(u.usd for u in self.uploads)

    @property
    def share(self) -> float | None:
        """Spend / budget, or None without a budget."""
        return None if not self.budget else self.usd / self.budget

    def over_budget(self) -> str | None:
        """Why new work waits (the spend reached the budget), or None."""
        if self.budget is None or self.usd < self.budget:
            return None
        return (
            f"the month's estimated spend ${self.usd:.2f} has reached MONTHLY_BUDGET_USD ${self.budget:g} "
            f"({self.month}); it waits until the month turns or the setting rises"
        )


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    )
    return start, following


def _hours_within(start: datetime | None, end: datetime | None, window: tuple[datetime, datetime]) -> float:
    if start is None or end is None:
        return 0.0
    lo, hi = max(start, window[0]), min(end, window[1])
    return max((hi - lo).total_seconds(), 0.0) / 3600


def _job_interval(entry: LedgerEntry, now: datetime) -> tuple[datetime | None, datetime | None]:
    if not entry.job_name or entry.status in (Status.CLAIMED, Status.QUEUED, Status.RETRYABLE):
        return None, None
    start = aware_time(entry.extra.get(JOB_STARTED)) or aware_time(entry.claimed_at)
    end = aware_time(entry.extra.get(JOB_ENDED))
    if end is None:
        end = (
            now
            if entry.status is Status.SUBMITTED
            else (aware_time(entry.deploy.get("started_at")) or entry.updated_at)
        )
    return start, aware_time(end)


def _endpoint_interval(entry: LedgerEntry, now: datetime) -> tuple[datetime | None, datetime | None]:
    d = entry.deploy
    live = aware_time(d.get("live_at"))
    if live is None:
        return None, None
    retired = d.get("retired") if isinstance(d.get("retired"), dict) else {}
    if entry.status is Status.LIVE:
        return live, now
    end = (
        aware_time(retired.get("confirmed_gone_at")) or aware_time(retired.get("at")) or aware_time(d.get("updated_at"))
    )
    return live, end or now


def upload_spend(entry: LedgerEntry, now: datetime, gpu_price: float | None) -> UploadSpend:
    window = month_bounds(now)
    try:
        gpus = max(int(str(entry.extra.get(JOB_GPUS) or "0")), 0)
    except ValueError:
        gpus = 0
    gpu_hours = _hours_within(*_job_interval(entry, now), window) * gpus
    size = str(entry.deploy.get("instance_type") or "")
    endpoint_hours = _hours_within(*_endpoint_interval(entry, now), window)
    price = price_of(size) if size else None
    return UploadSpend(
        dataset=entry.key.dataset,
        sha256=entry.key.sha256,
        source=entry.source,
        status=entry.status.value,
        gpu_hours=gpu_hours,
        gpu_usd=None if gpu_price is None else gpu_hours * gpu_price,
        endpoint_hours=endpoint_hours,
        endpoint_usd=None if price is None else endpoint_hours * price,
        instance_type=size,
    )


def month_spend(
    rows: Iterable[LedgerEntry], now: datetime, *, gpu_price: float | str, budget: float | str
) -> MonthSpend:
    """Every upload that spent something this month (UTC), most expensive first."""
    price = float(gpu_price) if gpu_price not in ("", None) else None
    spends = [upload_spend(r, now, price) for r in rows]
    spent = [s for s in spends if s.gpu_hours > 0 or s.endpoint_hours > 0]
    spent.sort(key=lambda s: (-s.usd, s.dataset, s.sha256))
    return MonthSpend(
        month=month_bounds(now)[0].strftime("%Y-%m"),
        uploads=tuple(spent),
        gpu_price=price,
        budget=float(budget) if budget not in ("", None) else None,
    )
