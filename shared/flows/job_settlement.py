"""A job that ended, settled: its model registered (the reconciler then deploys it) or its failure recorded.

The one place both ways of noticing the end reach: the Event Grid handler (shared.flows.job_events) and the
reconciler's poll of quiet jobs (shared.flows.job_poll), so the two can race without harm (the ledger's
status, written with ETag checks, lets one win). It does only quick things, as Event Grid waits at most 30 s:
one model registration, one ledger write, the report's job and deployment sections. The training metrics
(a read of up to 20 s) are the reconciler tick's: the same ledger write marks the row `training_pending`
(shared.flows.training_report), and the tick's read writes the report's Training section.

Registration errors are classified: a transient one is raised as RetryLater (Event Grid redelivers; the poll
tries again next tick); a permanent one (403, a missing output, a validation error) is written to the ledger
as `failed` and to the report at once, never retried for a day in silence.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.azure.azureml.errors import is_transient
from shared.domain.deploy.names import endpoint_name, model_version, registered_model_name
from shared.domain.finetune.choices import UploadChoices
from shared.domain.ledger import LedgerEntry, Status, remember_studio_url
from shared.domain.naming import dataset_prefix
from shared.domain.run_events import Outcome
from shared.domain.spend import JOB_ENDED
from shared.flows.deploy_context import DeployContext
from shared.flows.deployment_start import deployment_summary, start_deployment
from shared.flows.reports import update_report
from shared.flows.training_report import read_on_next_tick
from shared.logs import log_step

REGISTER_AGAIN = "register_again"
"""`entry.deploy` flag: a re-upload asked to register a completed job's model again (the poll does it at once)."""


class RetryLater(Exception):
    """Raised so Event Grid delivers the event again later (our record is not ready, or a transient error)."""


def base_model_name(model_id: str) -> str:
    """'azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/15' -> 'Phi-3-mini-4k-instruct'."""
    if "/models/" in model_id:
        return model_id.split("/models/", 1)[1].split("/", 1)[0]
    return model_id.split(":")[0] if model_id else model_id


def settle_job(entry: LedgerEntry, outcome: Outcome, ctx: DeployContext, *, base_model_id: str, via: str) -> str:
    """Act on the upload's job having ended (`via` says who noticed: "event" or "poll")."""
    if entry.status is not Status.SUBMITTED:
        log_step(
            "job_event.duplicate",
            cid=entry.cid,
            run=entry.job_name,
            status=entry.status.value,
            outcome=outcome.value,
            via=via,
        )
        return f"already handled ({entry.status.value})"
    entry.extra[JOB_ENDED] = ctx.now().isoformat()  # the spend estimate's end of the job (shared.domain.spend)
    if outcome is Outcome.COMPLETED:
        return _completed(entry, ctx, base_model_id, via)
    return _failed(entry, outcome, ctx, via)


def _failed(entry: LedgerEntry, outcome: Outcome, ctx: DeployContext, via: str) -> str:
    info = _job_info(ctx, entry.job_name)
    remember_studio_url(entry, info.studio_url if info else None)
    entry.status = Status.CANCELED if outcome is Outcome.CANCELED else Status.FAILED
    cause = info.error if info is not None else ""  # the backend's one line, when it says why
    entry.error = (
        f"the fine-tuning job {outcome.value}: {cause}" if cause else f"the fine-tuning job was {outcome.value}"
    )
    entry.updated_at = ctx.now()
    read_on_next_tick(entry)  # a failed job may have logged curves worth showing
    if not ctx.ledger.save(entry):
        return "another delivery handled it"
    log_step(
        "job_event.job_ended", cid=entry.cid, run=entry.job_name, outcome=outcome.value, via=via, level=logging.WARNING
    )
    _job_report(
        ctx,
        entry,
        {
            "status": outcome.value,
            "job": entry.job_name,
            "studio_url": info.studio_url if info else None,
            "error": cause or None,
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


def _job_report(ctx: DeployContext, entry: LedgerEntry, section: dict[str, Any]) -> None:
    update_report(ctx.store, dataset_prefix(entry.key.dataset, entry.key.sha256), "job", section)


def model_suffix(entry: LedgerEntry, settings: Any) -> str:
    """The upload's own chatft_suffix (kept on its row), else REGISTERED_MODEL_SUFFIX."""
    return UploadChoices.from_ledger(entry.extra).suffix or settings.registered_model_suffix


def _completed(entry: LedgerEntry, ctx: DeployContext, base_model_id: str, via: str) -> str:
    settings, run = ctx.settings, entry.job_name
    base_model = base_model_name(base_model_id) or settings.finetune_model
    try:
        registered = ctx.workspace.register_model(
            job_name=run,
            name=registered_model_name(base_model, entry.key.dataset, model_suffix(entry, settings)),
            version=model_version(run),
            description=f"chatft: {base_model} fine-tuned on {entry.source} by job {run}",
            tags={
                "chatft_managed": "true",
                "chatft_job": run,
                "chatft_upload": entry.key.sha256,
                "chatft_dataset": entry.key.dataset,
                "chatft_source": entry.source[:256],
                "chatft_base_model": base_model_id or base_model,
                "chatft_cid": entry.cid,
            },
        )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if is_transient(exc):
            log_step("job_event.register_retry", cid=entry.cid, run=run, via=via, error=error, level=logging.WARNING)
            raise RetryLater(f"registering the model of {run} failed transiently: {error}") from exc
        return _registration_failed(entry, ctx, error, via)
    info = _job_info(ctx, run)
    remember_studio_url(entry, info.studio_url if info else None)
    start_deployment(
        entry,
        settings,
        ctx.now(),
        model_id=registered.id,
        model_name=registered.name,
        model_version=registered.version,
        base_model=base_model,
        endpoint=endpoint_name(entry.key.dataset, run, settings.workspace_resource_id),
    )
    read_on_next_tick(entry)
    if not ctx.ledger.save(entry):
        return "another delivery handled it"
    log_step(
        "job_event.model_registered",
        cid=entry.cid,
        run=run,
        model=registered.id,
        new_version=registered.created,
        endpoint=entry.deploy["endpoint"],
        via=via,
    )
    _job_report(ctx, entry, {"status": "completed", "job": run, "studio_url": info.studio_url if info else None})
    update_report(
        ctx.store, dataset_prefix(entry.key.dataset, entry.key.sha256), "deployment", deployment_summary(entry)
    )
    return "registered; the reconciler deploys it"


def _registration_failed(entry: LedgerEntry, ctx: DeployContext, error: str, via: str) -> str:
    """Retrying cannot help (forbidden, no such output, invalid): say so now, in the ledger and the report.
    The trained model is still in the job's outputs: a new upload of the same bytes registers it again
    without retraining (see shared.flows.submission)."""
    info = _job_info(ctx, entry.job_name)
    remember_studio_url(entry, info.studio_url if info else None)
    entry.status = Status.FAILED
    entry.error = f"the job completed but registering its model failed: {error}"
    entry.updated_at = ctx.now()
    entry.deploy = {"registration_failed": error, "job": entry.job_name}
    if not ctx.ledger.save(entry):
        return "another delivery handled it"
    log_step("job_event.register_failed", cid=entry.cid, run=entry.job_name, via=via, error=error, level=logging.ERROR)
    _job_report(
        ctx,
        entry,
        {
            "status": "completed",
            "job": entry.job_name,
            "studio_url": info.studio_url if info else None,
            "registration": f"failed: {error}",
            "retry": "fix the cause (e.g. the app's role on the workspace), then upload the same file again: "
            "the trained model is registered again without retraining",
        },
    )
    return "registration failed"
