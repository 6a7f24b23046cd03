"""Submit a prepared upload for fine-tuning exactly once, whatever the trigger delivers.

Claim the upload in the ledger, submit through the Workspace protocol, record the outcome.
Permanent failures (a preflight, bad settings, validation, quota) are recorded and reported,
not raised; transient ones release the claim and are raised, so the host retries them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.azure.azureml.errors import is_transient
from shared.domain.finetune.choices import LEDGER_PREFIX, UploadChoices
from shared.domain.finetune.errors import PreflightError
from shared.domain.job_queue import QUEUED_AT, QUEUED_REASON, leave_queue, mark_queued, place, why_wait
from shared.domain.ledger import (
    RETRY_ON_REUPLOAD,
    Claim,
    Ledger,
    LedgerEntry,
    Status,
    UploadKey,
    change_and_save,
    remember_studio_url,
)
from shared.domain.naming import job_name
from shared.domain.spend import JOB_ENDED, JOB_GPUS, JOB_STARTED, month_spend
from shared.domain.workspace import FinetuneRequest, Workspace
from shared.flows.deployment_start import start_deployment
from shared.flows.job_settlement import REGISTER_AGAIN
from shared.logs import log_step
from shared.settings import Settings

TAG_MAX = 256


@dataclass(frozen=True)
class PreparedUpload:
    source: str
    blob_name: str
    dataset: str
    sha256: str
    cid: str
    etag: str
    prepared_paths: dict[str, str]
    """Split name -> blob path inside the prepared container."""
    choices: UploadChoices = field(default_factory=UploadChoices)
    """The upload's own model, epochs, learning rate and suffix (its blob metadata); kept on the ledger row."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def job_tags(upload: PreparedUpload, attempt: int) -> dict[str, str]:
    """Our tags, with keys free of dots: Event Grid advanced filters cannot address dotted keys."""
    tags = {
        "chatft_managed": "true",
        "chatft_upload": upload.sha256,
        "chatft_dataset": upload.dataset,
        "chatft_source": upload.source,
        "chatft_cid": upload.cid,
        "chatft_attempt": str(attempt),
    }
    return {k: v[:TAG_MAX] for k, v in tags.items()}


def submit_prepared(
    upload: PreparedUpload,
    *,
    settings: Settings,
    ledger: Ledger,
    workspace: Workspace,
    now: Callable[[], datetime] = _utcnow,
) -> dict[str, Any]:
    """Submit once; return a summary for the report. Raises only errors a retry could fix."""
    key = UploadKey(upload.dataset, upload.sha256)
    previous = ledger.get(key)
    if previous is not None and upload.etag not in ("", previous.upload_etag):  # a new upload of known bytes
        if previous.status is Status.RETIRED:
            return _redeploy(previous, upload, settings=settings, ledger=ledger, now=now())
        if previous.status is Status.FAILED and previous.deploy.get("registration_failed"):
            return _register_again(previous, upload, ledger=ledger, now=now())
    claim = ledger.claim(
        key,
        upload_etag=upload.etag,
        source=upload.source,
        cid=upload.cid,
        now=now(),
        stale_after=timedelta(seconds=settings.claim_timeout_seconds),
    )
    if not claim.acquired:
        existing = claim.existing
        log_step("submit.skipped", cid=upload.cid, reason=claim.reason, job=existing.job_name if existing else None)
        if existing is None:
            return {
                "status": "submitting",
                "attempt": claim.attempt,
                "from_ledger": True,
                "repeated_upload": claim.reason,
            }
        return {**ledger_summary(existing), "repeated_upload": claim.reason}
    log_step("submit.claimed", cid=upload.cid, attempt=claim.attempt, reason=claim.reason)
    remember_choices(ledger, key, claim.claim_id, upload.choices)
    again = claim.existing is not None and claim.existing.status in RETRY_ON_REUPLOAD  # a new arrival, at the back
    waiting = hold_for_guards(ledger, key, claim.claim_id, settings, now(), new_arrival=again)
    if waiting is not None:
        return waiting
    return submit_claimed(
        upload,
        claim_id=claim.claim_id,
        attempt=claim.attempt,
        settings=settings,
        ledger=ledger,
        workspace=workspace,
        now=now,
    )


def remember_choices(ledger: Ledger, key: UploadKey, claim_id: str, choices: UploadChoices) -> None:
    """Keep this upload's choices on its row (and only them), so a queued or resubmitted upload trains as asked."""
    wanted = choices.as_ledger()

    def keep(entry: LedgerEntry) -> None:
        for name in [k for k in entry.extra if k.startswith(LEDGER_PREFIX)]:
            entry.extra.pop(name)
        entry.extra.update(wanted)

    entry = ledger.get(key)
    if entry is None or entry.claim_id != claim_id:
        return
    if {k: v for k, v in entry.extra.items() if k.startswith(LEDGER_PREFIX)} != wanted:
        change_and_save(ledger, entry, keep)


def hold_for_guards(
    ledger: Ledger, key: UploadKey, claim_id: str, settings: Settings, at: datetime, *, new_arrival: bool = False
) -> dict[str, Any] | None:
    """After the claim (so two workers never both pass, shared.domain.job_queue): the submission section of an
    upload that must wait (MAX_ACTIVE_JOBS, uploads that came first, MONTHLY_BUDGET_USD), its row saved
    `queued` with its place; None when it may be submitted now."""
    rows = ledger.with_status(Status.SUBMITTED, Status.CLAIMED, Status.QUEUED)
    me = next((r for r in rows if r.key == key and r.claim_id == claim_id), None)
    if me is None:
        return None  # not readable back: submit (the cap is a guard, not a reason to lose the upload)
    if new_arrival:
        leave_queue(me)  # an earlier attempt's place is not this upload's
    over = budget_reason(ledger, settings, at)
    reason = why_wait(
        me,
        rows,
        cap=settings.max_active_jobs,
        now=at,
        stale_after=timedelta(seconds=settings.claim_timeout_seconds),
        over_budget=over,
    )
    if reason is None:
        return None
    mark_queued(me, reason, at)
    if not ledger.save(me):
        return {**ledger_summary(me), "repeated_upload": "another worker took it over while it was being queued"}
    log_step("submit.queued", cid=me.cid, reason=reason, place=place(me, rows))
    return queued_summary(me, rows)


def budget_reason(ledger: Ledger, settings: Settings, at: datetime) -> str | None:
    """Why new work waits for MONTHLY_BUDGET_USD, or None (no budget, or under it)."""
    if settings.monthly_budget_usd == "":
        return None
    spend = month_spend(
        ledger.with_status(*Status), at, gpu_price=settings.gpu_hourly_price_usd, budget=settings.monthly_budget_usd
    )
    return spend.over_budget()


def queued_summary(entry: LedgerEntry, rows: list[LedgerEntry]) -> dict[str, Any]:
    """The report's submission section of a waiting upload."""
    return {
        "status": "queued",
        "attempt": entry.attempt,
        "place": place(entry, rows),
        "reason": entry.extra.get(QUEUED_REASON, ""),
        "queued_at": entry.extra.get(QUEUED_AT),
        "next": "the reconciler submits queued uploads in arrival order as jobs end; `chatft cancel UPLOAD` "
        "takes it out of the queue",
    }


def submit_claimed(
    upload: PreparedUpload,
    *,
    claim_id: str,
    attempt: int,
    settings: Settings,
    ledger: Ledger,
    workspace: Workspace,
    now: Callable[[], datetime] = _utcnow,
) -> dict[str, Any]:
    """Submit an upload this worker holds the claim of (ingest's, or the reconciler's from the queue)."""
    key = UploadKey(upload.dataset, upload.sha256)
    claim = Claim(True, attempt, "", claim_id)
    request = FinetuneRequest(
        job_name=job_name(upload.blob_name, upload.sha256, claim.attempt),
        data_uris={
            split: f"azureml://datastores/{settings.aml_datastore}/paths/{path}"
            for split, path in upload.prepared_paths.items()
        },
        tags=job_tags(upload, claim.attempt),
        cid=upload.cid,
        choices=upload.choices,
    )
    try:
        if settings.submission_problems:
            raise PreflightError("invalid settings: " + "; ".join(settings.submission_problems))
        upload.choices.check()
        job = workspace.submit_finetune(request)
    except PreflightError as exc:
        failed = _failed(ledger, key, claim.claim_id, upload, now(), str(exc), exc.setting, claim.attempt)
        return {**failed, **_choices_section(upload.choices)}
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if is_transient(exc):
            ledger.finish(key, claim.claim_id, Status.RETRYABLE, now(), error=error)
            log_step("submit.retrying", cid=upload.cid, error=error, level=logging.WARNING)
            raise
        logging.getLogger("chatft").exception("submission failed permanently")
        return _failed(ledger, key, claim.claim_id, upload, now(), error, None, claim.attempt)
    _finish_submitted(ledger, key, claim.claim_id, now(), job)
    log_step(
        "submit.submitted",
        cid=upload.cid,
        job=job.name,
        display_name=job.display_name,
        experiment=job.experiment_name,
        existed=job.already_existed,
        compute=job.compute,
        gpus_per_node=job.gpus_per_node,
        model=job.model_id,
        warnings=job.warnings,
    )
    return {
        "status": "submitted",
        "job": job.name,
        "display_name": job.display_name,
        "experiment": job.experiment_name,
        "studio_url": job.studio_url,
        "attempt": claim.attempt,
        "already_existed": job.already_existed,
        "foundation_model": job.model_id,
        "compute": job.compute,
        "gpus_per_node": job.gpus_per_node,
        "parameters": job.parameters,
        "dropped_parameters": [{"key": k, "source": s, "reason": r} for k, s, r in job.dropped_parameters],
        "warnings": job.warnings,
        **_choices_section(upload.choices),
    }


def _choices_section(choices: UploadChoices) -> dict[str, Any]:
    """The report's record of what this upload chose over the app's settings (nothing when it chose nothing)."""
    given = choices.summary()
    return {"upload_choices": given} if given else {}


def _finish_submitted(ledger: Ledger, key: UploadKey, claim_id: str, at: datetime, job: Any) -> None:
    """`submitted`, with what the spend estimate needs (shared.domain.spend): when, and how many GPUs."""
    nodes = _whole(job.parameters.get("num_nodes_finetune")) if isinstance(job.parameters, dict) else 1

    def submitted(entry: LedgerEntry) -> None:
        entry.status, entry.updated_at, entry.error = Status.SUBMITTED, at, ""
        entry.job_name = job.name
        remember_studio_url(entry, job.studio_url)
        entry.extra[JOB_STARTED] = at.isoformat()
        entry.extra[JOB_GPUS] = str(nodes * max(int(job.gpus_per_node or 0), 0))
        entry.extra.pop(JOB_ENDED, None)

    entry = ledger.get(key)
    if entry is not None and entry.claim_id == claim_id:  # else taken over meanwhile: no write, as Ledger.finish
        submitted(entry)
        ledger.save(entry)


def _whole(value: Any) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        return 1
    return number if number >= 1 else 1


def _redeploy(
    entry: LedgerEntry, upload: PreparedUpload, *, settings: Settings, ledger: Ledger, now: datetime
) -> dict[str, Any]:
    """A new upload of bytes whose endpoint the janitor retired: deploy the registered model again,
    without retraining. The reconciler takes it from `registered`, like a job that just finished."""
    previous = entry.deploy
    model = {k: previous[k] for k in ("model_id", "model_name", "model_version", "base_model", "endpoint")}
    retired = previous.get("retired")
    start_deployment(entry, settings, now, **model)
    entry.deploy["redeployed_after"] = retired
    name = f"{model['model_name']}:{model['model_version']}"
    return _take_again(
        ledger,
        entry,
        upload,
        busy="redeploying it",
        step="submit.redeploying",
        doing=f"its endpoint was retired; redeploying model {name} without retraining",
        model=name,
        endpoint=model["endpoint"],
    )


def _register_again(entry: LedgerEntry, upload: PreparedUpload, *, ledger: Ledger, now: datetime) -> dict[str, Any]:
    """A new upload of bytes whose job completed but whose model could not be registered (a missing
    role, say): back to `submitted`, flagged so the reconciler's next tick looks the job up and
    registers its model, without retraining."""
    failure = entry.deploy.get("registration_failed")
    entry.status, entry.error, entry.updated_at = Status.SUBMITTED, "", now
    entry.deploy = {REGISTER_AGAIN: True, "previous_failure": failure}
    return _take_again(
        ledger,
        entry,
        upload,
        busy="registering it again",
        step="submit.register_again",
        doing=f"job {entry.job_name} completed but its model was not registered ({failure}); "
        "registering it again without retraining",
        job=entry.job_name,
        previous_failure=failure,
    )


def _take_again(
    ledger: Ledger, entry: LedgerEntry, upload: PreparedUpload, *, busy: str, step: str, doing: str, **fields: Any
) -> dict[str, Any]:
    """Claim a known row for a new delivery of its bytes: the row takes the blob's ETag and is saved only if
    unchanged since it was read, so of two deliveries one wins and the other reports `another delivery is <busy>`.
    The winner logs `step` and reports what it does instead of retraining (`doing`)."""
    entry.upload_etag = upload.etag
    if not ledger.save(entry):
        return {**ledger_summary(entry), "repeated_upload": f"another delivery is {busy}"}
    log_step(step, cid=entry.cid, **fields)
    return {**ledger_summary(entry), "repeated_upload": doing}


_SUBMISSION_STATUS = {Status.CLAIMED: "submitting", Status.RETRYABLE: "retrying", Status.FAILED: "failed"}
"""A ledger status as the report's submission section tells it; any later status means "submitted"."""


def ledger_summary(entry: LedgerEntry) -> dict[str, Any]:
    """The submission section as the ledger has it: what a report converges to (`from_ledger`
    marks it as the short view, which never hides the submitting worker's detailed summary)."""
    summary: dict[str, Any] = {
        "status": _SUBMISSION_STATUS.get(entry.status, "submitted"),
        "attempt": entry.attempt,
        "from_ledger": True,
    }
    if entry.job_name and entry.status is not Status.CLAIMED:
        summary["job"] = entry.job_name
    if entry.status in (Status.FAILED, Status.RETRYABLE) and entry.error:
        summary["error"] = entry.error
    return summary


def _failed(
    ledger: Ledger,
    key: UploadKey,
    claim_id: str,
    upload: PreparedUpload,
    at: datetime,
    error: str,
    setting: str | None,
    attempt: int,
) -> dict[str, Any]:
    ledger.finish(key, claim_id, Status.FAILED, at, error=error)
    log_step("submit.failed", cid=upload.cid, error=error, setting=setting, level=logging.ERROR)
    return {
        "status": "failed",
        "attempt": attempt,
        "error": error,
        "setting": setting,
        "retry": "fix the cause, then upload the same file again: a new upload of the same bytes retries",
    }
