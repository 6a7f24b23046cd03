"""The report's "Training" section and training.png, written when a job ends. Best-effort: a metrics
or chart failure is logged and the report says "metrics unavailable"; it never fails registration.

Level-triggered like the rest: when the metrics could not be read for a passing reason (the tracking store
answered 5xx/429/408, did not answer, or the read ran out of time), the ledger row is marked
(`extra["training_pending"]` = tries so far) and every reconciler tick tries again, up to MAX_TRIES."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from shared.domain.ledger import LedgerEntry, Status, change_and_save
from shared.domain.naming import dataset_prefix
from shared.domain.training import CHART_FILE, TrainingMetrics, chart_layout, training_section
from shared.flows.reports import update_report
from shared.logs import log_step

SECTION = "training"
PENDING = "training_pending"
"""`entry.extra` key: how many reads of the job's metrics failed for a passing reason ("0": not read yet;
absent: nothing to read)."""
MAX_TRIES = 5
SAVE_TRIES = 3


def _submission(ctx: Any, prefix: str) -> dict[str, Any]:
    try:
        raw = ctx.store.read_bytes(f"{prefix}/report.json")
        return (orjson.loads(raw) if raw else {}).get("submission") or {}
    except Exception:
        return {}


def _count(submission: dict[str, Any], parameter: str) -> int:
    """A whole-number pipeline parameter as submitted (FINETUNE_OVERRIDES may set it), else 1."""
    parameters = submission.get("parameters")
    try:
        value = int(str(parameters.get(parameter)).strip()) if isinstance(parameters, dict) else 1
    except ValueError:
        return 1
    return value if value >= 1 else 1


def read_on_next_tick(entry: LedgerEntry) -> None:
    """Mark a row whose job just ended, in the caller's own ledger write: the next tick reads its metrics."""
    entry.extra[PENDING] = "0"


def report_training(ctx: Any, entry: LedgerEntry, status: str) -> None:
    """Never raises. For a failed or canceled job, writes nothing unless it logged metrics."""
    try:
        transient = _report_training(ctx, entry, status)
        _remember(ctx, entry, transient)
    except Exception as exc:
        log_step(
            "training_report.error",
            cid=entry.cid,
            run=entry.job_name,
            error=f"{type(exc).__name__}: {exc}",
            level=logging.WARNING,
        )


def retry_pending_training(ctx: Any) -> list[str]:
    """The reconciler's repair: read again the metrics of every job whose read failed for a passing reason."""
    retried = []
    for entry in ctx.ledger.with_status(*Status):
        if entry.extra.get(PENDING) and entry.job_name:
            report_training(ctx, entry, job_outcome(entry))
            retried.append(entry.cid)
    return retried


def job_outcome(entry: LedgerEntry) -> str:
    """How the row's job ended: canceled, failed (in training) or completed (a model, or a failed registration)."""
    if entry.status is Status.CANCELED:
        return "canceled"
    if entry.status is Status.FAILED and entry.error.startswith("the fine-tuning job was"):
        return "failed"
    return "completed"


def _transient(exc: BaseException) -> bool:
    from shared.azure.azureml.errors import is_transient

    return is_transient(exc) or bool(getattr(exc, "transient", False))


def _remember(ctx: Any, entry: LedgerEntry, transient: bool) -> None:
    """Mark the row for another try (or clear the mark), on a fresh read of it: the row may have moved on."""
    raw = str(entry.extra.get(PENDING) or "0")
    tries = int(raw) if raw.isdigit() else MAX_TRIES
    want = str(tries + 1) if transient and tries + 1 < MAX_TRIES else ""
    if want == (entry.extra.get(PENDING) or ""):
        return

    def mark(row: LedgerEntry) -> None:
        if want:
            row.extra[PENDING] = want
        else:
            row.extra.pop(PENDING, None)

    if change_and_save(ctx.ledger, ctx.ledger.get(entry.key), mark, SAVE_TRIES) is not None:
        step = "pending" if want else ("gave_up" if transient else "settled")
        log_step(f"training_report.{step}", cid=entry.cid, run=entry.job_name, tries=tries + 1)


def _report_training(ctx: Any, entry: LedgerEntry, status: str) -> bool:
    """Write the section; True when the metrics could not be read for a passing reason (worth another try)."""
    settings, job = ctx.settings, entry.job_name
    prefix = dataset_prefix(entry.key.dataset, entry.key.sha256)
    metrics: TrainingMetrics | None = None
    error = None
    transient = False
    try:
        metrics = ctx.workspace.training_metrics(job)
        transient = bool(metrics.notes) and not any(metrics.series.values())
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        transient = _transient(exc)
        log_step("training_report.metrics_unavailable", cid=entry.cid, run=job, error=error, level=logging.WARNING)
    has_curves = metrics is not None and any(metrics.series.values())
    if status != "completed" and not has_curves:
        return transient
    submission = _submission(ctx, prefix)
    compute = submission.get("compute") or settings.finetune_compute
    instance_type = settings.finetune_instance_type if compute in ("serverless", "") else compute
    chart = None
    layout = chart_layout(metrics, f"chatft training: {job}") if has_curves and metrics else None
    if layout is not None:
        try:
            from shared.azure.chart import render_png

            ctx.store.put_bytes(f"{prefix}/{CHART_FILE}", render_png(layout), "image/png")
            chart = CHART_FILE
        except Exception as exc:
            log_step("training_report.chart_failed", cid=entry.cid, run=job, error=f"{type(exc).__name__}: {exc}")
    section = training_section(
        metrics,
        job=job,
        status=status,
        compute=compute,
        instance_type=instance_type,
        nodes=_count(submission, "num_nodes_finetune"),
        gpus_per_node=int(submission.get("gpus_per_node") or 0),
        price_per_gpu_hour=settings.gpu_hourly_price_usd,
        chart=chart,
        error=error,
    )
    update_report(ctx.store, prefix, SECTION, section)
    log_step("training_report.written", cid=entry.cid, run=job, curves=len(metrics.series) if metrics else 0)
    return transient
