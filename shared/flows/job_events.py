"""A finished fine-tuning job: register the model and start deploying, or report the failure.

Runs inside the Event Grid handler, so it only does quick things: one registry call, one
ledger write, one report update, and the first non-waiting deployment steps. Deliveries repeat
and arrive out of order; the ledger's status (written with ETag checks) makes every one safe.
"""

from __future__ import annotations

import logging

from shared.domain.deploy.names import endpoint_name, model_version, registered_model_name
from shared.domain.ledger import LedgerEntry, Status, UploadKey
from shared.domain.naming import dataset_prefix
from shared.domain.run_events import Outcome, RunEvent, classify
from shared.flows.reconciler import DeployContext, advance, deployment_summary, start_deployment
from shared.flows.reports import update_report
from shared.logs import log_step


class RetryLater(Exception):
    """Raised so Event Grid delivers the event again later (our own record is not ready yet)."""


def base_model_name(model_id: str) -> str:
    """'azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/15' -> 'Phi-3-mini-4k-instruct'."""
    if "/models/" in model_id:
        return model_id.split("/models/", 1)[1].split("/", 1)[0]
    return model_id.split(":")[0] if model_id else model_id


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
    if entry.status is not Status.SUBMITTED:
        log_step(
            "job_event.duplicate", cid=cid, run=event.run_id, status=entry.status.value, outcome=decision.outcome.value
        )
        return f"already handled ({entry.status.value})"
    if decision.outcome is Outcome.COMPLETED:
        return _completed(event, entry, ctx)
    return _failed(event, entry, decision.outcome, ctx)


def _failed(event: RunEvent, entry: LedgerEntry, outcome: Outcome, ctx: DeployContext) -> str:
    info = _job_info(ctx, event.run_id)
    now = ctx.now()
    entry.status = Status.CANCELED if outcome is Outcome.CANCELED else Status.FAILED
    entry.error = f"the fine-tuning job was {outcome.value}"
    entry.updated_at = now
    if not ctx.ledger.save(entry):
        return "another delivery handled it"
    log_step("job_event.job_ended", cid=entry.cid, run=event.run_id, outcome=outcome.value, level=logging.WARNING)
    update_report(
        ctx.store,
        dataset_prefix(entry.key.dataset, entry.key.sha256),
        "job",
        {
            "status": outcome.value,
            "job": event.run_id,
            "studio_url": info.studio_url if info else None,
            "retry": "look at the job in the studio, fix the cause, then upload the same file again",
        },
    )
    return outcome.value


def _job_info(ctx: DeployContext, run_id: str):
    try:
        return ctx.workspace.job_info(run_id)
    except Exception as exc:
        log_step("job_event.no_job_info", run=run_id, error=f"{type(exc).__name__}: {exc}", level=logging.WARNING)
        return None


def _completed(event: RunEvent, entry: LedgerEntry, ctx: DeployContext) -> str:
    settings, tags = ctx.settings, event.tags
    base_model_id = tags.get("chatft_base_model", "")
    base_model = base_model_name(base_model_id) or settings.finetune_model
    registered = ctx.workspace.register_model(
        job_name=event.run_id,
        name=registered_model_name(base_model, settings.registered_model_suffix),
        version=model_version(event.run_id),
        description=f"chatft: {base_model} fine-tuned on {entry.source} by job {event.run_id}",
        tags={
            "chatft_managed": "true",
            "chatft_job": event.run_id,
            "chatft_upload": entry.key.sha256,
            "chatft_dataset": entry.key.dataset,
            "chatft_source": entry.source[:256],
            "chatft_base_model": base_model_id or base_model,
            "chatft_cid": entry.cid,
        },
    )
    info = _job_info(ctx, event.run_id)
    start_deployment(
        entry,
        settings,
        ctx.now(),
        model_id=registered.id,
        model_name=registered.name,
        model_version=registered.version,
        base_model=base_model,
        endpoint=endpoint_name(entry.key.dataset, event.run_id, settings.workspace_resource_id),
    )
    if not ctx.ledger.save(entry):
        return "another delivery handled it"
    log_step(
        "job_event.model_registered",
        cid=entry.cid,
        run=event.run_id,
        model=registered.id,
        new_version=registered.created,
        endpoint=entry.deploy["endpoint"],
    )
    prefix = dataset_prefix(entry.key.dataset, entry.key.sha256)
    update_report(
        ctx.store,
        prefix,
        "job",
        {"status": "completed", "job": event.run_id, "studio_url": info.studio_url if info else None},
    )
    update_report(ctx.store, prefix, "deployment", deployment_summary(entry))
    try:  # start the long-running work now; the reconciler timer carries it on
        where = advance(entry, ctx, max_steps=3)
    except Exception as exc:
        where = f"left to the reconciler ({type(exc).__name__})"
    return f"registered; deployment {where}"
