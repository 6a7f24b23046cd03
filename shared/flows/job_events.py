"""A run event from the workspace: classify it, find the upload's ledger row, and settle the job.

Deliveries repeat and arrive out of order; the ledger's status, written with ETag checks, makes every one
safe. What settling does (and the 30 s it must fit in) is shared.flows.job_settlement's; a lost event is made
up for by the reconciler's poll (shared.flows.job_poll), which settles the same way.
"""

from __future__ import annotations

import logging

from shared.domain.ledger import Status, UploadKey
from shared.domain.run_events import Outcome, RunEvent, classify
from shared.flows.deploy_context import DeployContext
from shared.flows.job_settlement import RetryLater, settle_job
from shared.logs import log_step


def handle_run_event(event: RunEvent, ctx: DeployContext) -> str:
    decision = classify(event, ctx.settings.workspace_resource_id)
    tags = event.tags
    cid = tags.get("chatft_cid", "")
    if decision.outcome is Outcome.IGNORE:
        log_step("job_event.ignored", event_id=event.id, run=event.run_id, reason=decision.reason, cid=cid or None)
        return f"ignored: {decision.reason}"
    key = UploadKey(tags.get("chatft_dataset", ""), tags.get("chatft_upload", ""))
    entry = ctx.ledger.get(key) if key.dataset and key.sha256 else None
    if entry is None:
        log_step(
            "job_event.ignored",
            cid=cid,
            run=event.run_id,
            reason="no ledger row for this upload",
            level=logging.WARNING,
        )
        return "ignored: unknown upload"
    if entry.status in (Status.CLAIMED, Status.RETRYABLE):
        raise RetryLater(f"submission of {event.run_id} is not recorded yet (ledger {entry.status.value})")
    if entry.job_name.lower() != event.run_id.lower():
        log_step("job_event.ignored", cid=cid, run=event.run_id, reason=f"the upload's job is {entry.job_name}")
        return "ignored: another attempt's job"
    return settle_job(entry, decision.outcome, ctx, base_model_id=tags.get("chatft_base_model", ""), via="event")
