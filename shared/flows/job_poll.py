"""Self-healing for lost run events: the reconciler asks Azure ML about jobs that have been quiet.

An event can be lost for good: the subscription is missing or mis-filtered, Event Grid gave up
after its retries, or the run's tags were not in `runTags`. Each tick, every upload still
`submitted` whose ledger row has not changed for JOB_POLL_QUIET_MINUTES (or whose registration
is to be retried) is looked up with `jobs.get`; a job in a final state is settled exactly as its
event would have settled it (`settle_job`), so the two paths can race without harm. A job still running
past JOB_MAX_HOURS (from its submission) is canceled there and then (shared.flows.job_cancel).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from shared.domain.ledger import LedgerEntry, Status
from shared.domain.run_events import outcome_of_status
from shared.domain.spend import JOB_STARTED
from shared.flows.deploy_context import DeployContext
from shared.flows.job_cancel import cancel_upload
from shared.flows.job_settlement import REGISTER_AGAIN, RetryLater, settle_job
from shared.logs import log_step


def _is_quiet(entry: LedgerEntry, now: datetime, quiet: timedelta) -> bool:
    if entry.deploy.get(REGISTER_AGAIN):
        return True
    last = entry.updated_at or entry.claimed_at
    return last is None or now - last >= quiet


def poll_quiet_jobs(ctx: DeployContext) -> list[tuple[str, str]]:
    """Settle quiet submitted jobs that have ended; one job's error never stops the others."""
    now = ctx.now()
    quiet = timedelta(minutes=ctx.settings.job_poll_quiet_minutes)
    results = []
    for entry in ctx.ledger.with_status(Status.SUBMITTED):
        if not entry.job_name or not (_is_quiet(entry, now, quiet) or overdue(entry, now, ctx.settings) is not None):
            continue
        results.append((entry.job_name, _poll(entry, ctx)))
    return results


def overdue(entry: LedgerEntry, now: datetime, settings: Any) -> timedelta | None:
    """How long the job has run, when that is past JOB_MAX_HOURS (from its submission); else None."""
    started = _moment(entry.extra.get(JOB_STARTED)) or entry.claimed_at
    running = now - started
    return running if running > timedelta(hours=settings.job_max_hours) else None


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _cancel_overdue(entry: LedgerEntry, ctx: DeployContext, running: timedelta) -> str:
    """A job still running past JOB_MAX_HOURS: canceled (not awaited), the upload `canceled` with the reason."""
    hours = running.total_seconds() / 3600
    reason = (
        f"canceled after {hours:.1f} hours: JOB_MAX_HOURS is {ctx.settings.job_max_hours:g} (a runaway job is stopped; "
        "raise JOB_MAX_HOURS if jobs this long are expected, then upload the file again)"
    )
    try:
        result = cancel_upload(ctx, entry, by="JOB_MAX_HOURS (the deploy reconciler)", reason=reason)
    except Exception as exc:  # asked again next tick
        log_step("job_poll.cancel_failed", cid=entry.cid, job=entry.job_name, error=f"{type(exc).__name__}: {exc}")
        return f"cancel failed: {type(exc).__name__}"
    return "canceled: past JOB_MAX_HOURS" if result.done else f"not canceled: {result.ended or 'the row moved on'}"


def _poll(entry: LedgerEntry, ctx: DeployContext) -> str:
    try:
        info = ctx.workspace.job_info(entry.job_name)
    except Exception as exc:
        log_step(
            "job_poll.error",
            cid=entry.cid,
            job=entry.job_name,
            error=f"{type(exc).__name__}: {exc}",
            level=logging.WARNING,
        )
        return f"error: {type(exc).__name__}"
    if info is None:
        log_step(
            "job_poll.job_missing",
            cid=entry.cid,
            job=entry.job_name,
            reason="the ledger says submitted but the workspace has no such job",
            level=logging.ERROR,
        )
        return "job not found"
    outcome = outcome_of_status(info.status)
    if outcome is None:
        running = overdue(entry, ctx.now(), ctx.settings)
        if running is not None:
            return _cancel_overdue(entry, ctx, running)
        log_step("job_poll.running", cid=entry.cid, job=entry.job_name, status=info.status)
        return f"still {info.status or 'unknown'}"
    log_step("job_poll.ended", cid=entry.cid, job=entry.job_name, status=info.status, reason="no event arrived")
    try:
        return settle_job(entry, outcome, ctx, base_model_id=info.tags.get("chatft_base_model", ""), via="poll")
    except RetryLater as exc:
        return f"retry next tick: {exc}"
