"""`chatft cancel UPLOAD`: stop an upload's training, whichever stage it is in.

Queued: it leaves the queue. Submitted: its job is canceled (Azure ML's cancel, not awaited; the local
backend stops the training process). Either way the ledger row, the report and the `chatft.job.canceled`
event say who canceled it and when. Nothing to cancel is one line, never an error: canceling twice says
when and by whom it was canceled (ok: what was asked is true), a job that already ended says how it ended
and what to do instead (not ok: nothing was canceled), as `az ml job cancel` and OpenAI's
`fine_tuning.jobs.cancel` refuse a finished job.
"""

from __future__ import annotations

import getpass
import socket

from shared.domain.ledger import CANCELED_AT, CANCELED_BY, Status
from shared.domain.shell import chatft
from shared.flows.endpoint_actions import ActionContext, Outcome, Refused, find
from shared.flows.job_cancel import cancel_upload


def who() -> str:
    """The person at this command line, as the ledger and the event name them."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (a container): the host still says where
        user = "unknown"
    return f"chatft cancel ({user}@{socket.gethostname()})"


def cancel(ctx: ActionContext, query: str, *, reason: str = "", by: str = "") -> Outcome:
    subject = find(ctx, query)
    entry = subject.entry
    if entry is None:
        raise Refused(f"endpoint {subject.name} belongs to no upload in the ledger: there is no job to cancel")
    by = by or who()
    why = f"canceled by {by}" + (f": {reason.strip()}" if reason.strip() else "")
    label = subject.label
    status = entry.status
    if status is Status.CANCELED:
        when, whom = entry.extra.get(CANCELED_AT) or entry.updated_at, entry.extra.get(CANCELED_BY) or "Azure ML"
        return Outcome(f"{label} is already canceled ({when}, by {whom}): nothing to do", changed=False)
    if status is Status.CLAIMED:
        raise Refused(f"{label} is being submitted right now: run {chatft('cancel', query)} again in a moment")
    if status in (Status.QUEUED, Status.RETRYABLE, Status.SUBMITTED):
        result = cancel_upload(ctx, entry, by=by, reason=why)
        if result.done:
            what = f"job {entry.job_name} canceled" if entry.job_name else "taken out of the queue"
            return Outcome(f"{label}: {what} ({why}); upload the same file again to train it")
        if result.ended:
            return _ended(label, entry.job_name, result.ended, query)
        fresh = result.entry
        now = fresh.status.value if fresh is not None else "gone"
        raise Refused(f"{label} moved on while it was being canceled (now {now}): run {chatft('cancel', query)} again")
    if status is Status.FAILED:
        return Outcome(
            f"{label}: job {entry.job_name or '(none)'} already failed ({entry.error}): nothing to cancel",
            changed=False,
            ok=False,
        )
    return _ended(label, entry.job_name, "Completed", query, status.value)  # registered and every later stage


def _ended(label: str, job: str, ended: str, query: str, status: str = "") -> Outcome:
    after = (
        f"; its model is registered (status {status}): {chatft('retire', query)} removes its endpoint"
        if ended.lower() == "completed"
        else ""
    )
    return Outcome(f"{label}: job {job} already {ended.lower()}: nothing to cancel{after}", changed=False, ok=False)
