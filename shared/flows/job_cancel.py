"""Cancel an upload's job, or take it out of the queue, and record who, when and why.

Below both callers: the reconciler's poll (a job past JOB_MAX_HOURS) and `chatft cancel`. The job is
canceled with the backend's cancel started and never awaited (Azure ML: `jobs.begin_cancel`; local: its
training process is stopped); the row is `canceled` at once, so its training slot is free for the next
queued upload, and the job's own Canceled event later finds the row settled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.ledger import CANCELED_AT, CANCELED_BY, LedgerEntry, Status
from shared.domain.naming import dataset_prefix
from shared.domain.spend import JOB_ENDED
from shared.flows.lifecycle_events import publish_due
from shared.flows.reports import update_report
from shared.logs import log_step


@dataclass(frozen=True)
class Canceled:
    done: bool
    """True: canceled now. False: nothing to cancel (`ended` says how the job ended, "" if the row moved on)."""
    ended: str = ""
    entry: LedgerEntry | None = None


def cancel_upload(ctx: Any, entry: LedgerEntry, *, by: str, reason: str) -> Canceled:
    """A `queued` or `retryable` row (no job runs) is taken with an ETag save; a `submitted` one has its job
    canceled first. A job that already ended is left to the usual settlement (its event or the poll)."""
    now = ctx.now()
    if entry.status is Status.SUBMITTED and entry.job_name:
        ended = ctx.workspace.begin_cancel_job(entry.job_name)
        if ended:
            log_step("job.cancel_too_late", cid=entry.cid, job=entry.job_name, status=ended, by=by)
            return Canceled(False, ended, entry)
    elif entry.status not in (Status.QUEUED, Status.RETRYABLE):
        return Canceled(False, "", entry)
    was = entry.status
    _record(entry, by, reason, now)
    if not ctx.ledger.save(entry):
        fresh = ctx.ledger.get(entry.key)
        if was is not Status.SUBMITTED or fresh is None or fresh.status is not Status.SUBMITTED:
            return Canceled(False, "", fresh)  # taken from the queue meanwhile, or the job's end was settled
        _record(fresh, by, reason, now)  # the job is canceled: the row must say so, whatever else it learned
        if not ctx.ledger.save(fresh):
            return Canceled(False, "", ctx.ledger.get(entry.key))
        entry = fresh
    log_step(
        "job.canceled",
        cid=entry.cid,
        job=entry.job_name or None,
        by=by,
        reason=reason,
        was=was.value,
        level=logging.WARNING,
    )
    section = {
        "status": "canceled",
        "job": entry.job_name or None,
        "canceled_by": by,
        "canceled_at": now.isoformat(),
        "reason": reason,
        "retry": "upload the same file again to train it (a new upload of the same bytes retries)",
    }
    update_report(
        ctx.store,
        dataset_prefix(entry.key.dataset, entry.key.sha256),
        "job" if entry.job_name else "submission",
        section,
    )
    publish_due(entry, ctx.ledger, getattr(ctx, "events", None), ctx.store)
    return Canceled(True, "", entry)


def _record(entry: LedgerEntry, by: str, reason: str, now: datetime) -> None:
    entry.status, entry.updated_at, entry.error = Status.CANCELED, now, reason
    entry.extra[CANCELED_BY] = by
    entry.extra[CANCELED_AT] = now.isoformat()
    if entry.job_name:
        entry.extra[JOB_ENDED] = now.isoformat()
