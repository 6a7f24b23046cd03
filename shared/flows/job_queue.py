"""The reconciler tick's queue: submit waiting uploads in arrival order as training slots free.

Each queued upload is taken with an ETag save (`queued` -> `claimed`, a new claim id), so two ticks (or a
tick and `chatft cancel`) never both take it; then the same admission as ingest's (shared.flows.submission
`hold_for_guards`) decides, and the same submission submits it. One that must still wait goes back to
`queued` with its place; the first that waits ends the tick's pass (those behind it came later).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from shared.domain.job_queue import active_jobs, in_order
from shared.domain.ledger import LedgerEntry, Status
from shared.domain.naming import dataset_prefix
from shared.flows.reports import update_report
from shared.flows.stale_claims import prepared_upload
from shared.flows.submission import hold_for_guards, submit_claimed
from shared.logs import log_step


def submit_queued(ctx: Any) -> list[tuple[str, str]]:
    """Submit as many queued uploads as there are free slots, first come first; (cid, outcome) pairs."""
    settings, now = ctx.settings, ctx.now()
    rows = ctx.ledger.with_status(Status.SUBMITTED, Status.CLAIMED, Status.QUEUED)
    queue = in_order(rows)
    if not queue:
        return []
    stale_after = timedelta(seconds=settings.claim_timeout_seconds)
    free = settings.max_active_jobs - active_jobs(rows, queue[0], now, stale_after)
    results = []
    for entry in queue[: max(free, 0)]:
        outcome = _take_and_submit(ctx, entry)
        results.append((entry.cid, outcome))
        if outcome != "submitted":
            break
    return results


def _take_and_submit(ctx: Any, entry: LedgerEntry) -> str:
    now = ctx.now()
    claim_id = uuid.uuid4().hex
    entry.status, entry.claim_id, entry.claimed_at, entry.updated_at = Status.CLAIMED, claim_id, now, now
    if not ctx.ledger.save(entry):  # another tick, or a cancel, got there first
        return "taken by another worker"
    try:
        waiting = hold_for_guards(ctx.ledger, entry.key, claim_id, ctx.settings, now)
        if waiting is not None:
            _report(ctx, entry, waiting)
            return "still queued"
        summary = submit_claimed(
            prepared_upload(entry, ctx.store),
            claim_id=claim_id,
            attempt=entry.attempt,
            settings=ctx.settings,
            ledger=ctx.ledger,
            workspace=ctx.workspace,
            now=ctx.now,
        )
    except Exception as exc:  # transient: the row is `retryable` (or still claimed): the stale-claim pass retries
        log_step("queue.submit_failed", cid=entry.cid, error=f"{type(exc).__name__}: {exc}", level=logging.WARNING)
        return f"error: {type(exc).__name__}"
    _report(ctx, entry, summary)
    log_step("queue.submitted", cid=entry.cid, status=summary.get("status"), job=summary.get("job"))
    return str(summary.get("status"))


def _report(ctx: Any, entry: LedgerEntry, summary: dict[str, Any]) -> None:
    update_report(ctx.store, dataset_prefix(entry.key.dataset, entry.key.sha256), "submission", summary)
