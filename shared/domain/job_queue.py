"""Who may start a GPU job now, and in what order the others wait: pure, read off the ledger rows.

MAX_ACTIVE_JOBS caps the jobs running at once. A worker first claims its upload (the row says `claimed`,
an ETag write), then counts the others: every `submitted` row and every fresh `claimed` one. Of any two
workers admitted at once, the one that claimed later counted the other, so the cap is never passed; at
worst both back off and wait, and the reconciler's next tick submits the first of them. Waiting rows keep
their place (`queued_at`, the time the upload first waited) in the ledger, so a restart loses none.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from shared.domain.ledger import LedgerEntry, Status

QUEUED_AT = "queued_at"
"""`entry.extra` key: when the upload first waited (ISO 8601); its place in the queue."""
QUEUED_REASON = "queued_reason"
"""`entry.extra` key: why it waits, in one line (the cap and how many run, or the budget)."""
BUDGET = "budget"
"""The reason's first word when MONTHLY_BUDGET_USD holds it (shared.domain.spend)."""


def queued_at(entry: LedgerEntry) -> datetime:
    """The upload's place: when it first waited, else when it was claimed (a fresh upload is last)."""
    value = entry.extra.get(QUEUED_AT)
    if value:
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            pass
    return entry.claimed_at


def _order(entry: LedgerEntry) -> tuple[datetime, str, str]:
    return queued_at(entry), entry.key.dataset, entry.key.sha256


def in_order(rows: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    """The queued rows, first come first."""
    return sorted((r for r in rows if r.status is Status.QUEUED), key=_order)


def place(entry: LedgerEntry, rows: Iterable[LedgerEntry]) -> int:
    """1 for the next to start; counts the queued rows ahead of it."""
    me = _order(entry)
    return 1 + sum(1 for r in rows if r.status is Status.QUEUED and r.key != entry.key and _order(r) < me)


def active_jobs(rows: Iterable[LedgerEntry], me: LedgerEntry, now: datetime, stale_after: timedelta) -> int:
    """Jobs running or being submitted by another worker (a claim older than `stale_after` is a crashed
    worker's: the reconciler resubmits it through this same check)."""
    return sum(
        1
        for r in rows
        if r.key != me.key
        and (r.status is Status.SUBMITTED or (r.status is Status.CLAIMED and now - r.claimed_at < stale_after))
    )


def why_wait(
    me: LedgerEntry,
    rows: list[LedgerEntry],
    *,
    cap: int,
    now: datetime,
    stale_after: timedelta,
    over_budget: str | None = None,
) -> str | None:
    """None: `me` (claimed by the caller) may be submitted now. Else why it waits: the budget, a full set of
    slots, or uploads that came first and wait too (first come, first served)."""
    if over_budget:
        return f"{BUDGET}: {over_budget}"
    running = active_jobs(rows, me, now, stale_after)
    if running >= cap:
        return f"MAX_ACTIVE_JOBS={cap}: {running} job{'s' if running != 1 else ''} running"
    ahead = place(me, rows) - 1
    if ahead:
        return f"{ahead} queued upload{'s' if ahead != 1 else ''} came first"
    return None


def mark_queued(entry: LedgerEntry, reason: str, now: datetime) -> None:
    """The row waits: its first waiting time is kept (its place), the reason is the latest."""
    entry.status, entry.updated_at, entry.error = Status.QUEUED, now, ""
    entry.extra.setdefault(QUEUED_AT, now.isoformat())
    entry.extra[QUEUED_REASON] = reason


def leave_queue(entry: LedgerEntry) -> None:
    """Forget an earlier wait (a new upload of the same bytes queues at the back). A row that was submitted
    keeps its wait: it is the `chatft.job.queued` event's occurrence."""
    entry.extra.pop(QUEUED_AT, None)
    entry.extra.pop(QUEUED_REASON, None)
