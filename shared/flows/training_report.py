"""The report's "Training" section and training.png, written when a job ends. Best-effort: a metrics
or chart failure is logged and the report says "metrics unavailable"; it never fails registration."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from shared.domain.ledger import LedgerEntry
from shared.domain.naming import dataset_prefix
from shared.domain.training import CHART_FILE, TrainingMetrics, chart_layout, training_section
from shared.flows.reports import update_report
from shared.logs import log_step

SECTION = "training"


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


def report_training(ctx: Any, entry: LedgerEntry, status: str) -> None:
    """Never raises. For a failed or canceled job, writes nothing unless it logged metrics."""
    try:
        _report_training(ctx, entry, status)
    except Exception as exc:
        log_step(
            "training_report.error",
            cid=entry.cid,
            run=entry.job_name,
            error=f"{type(exc).__name__}: {exc}",
            level=logging.WARNING,
        )


def _report_training(ctx: Any, entry: LedgerEntry, status: str) -> None:
    settings, job = ctx.settings, entry.job_name
    prefix = dataset_prefix(entry.key.dataset, entry.key.sha256)
    metrics: TrainingMetrics | None = None
    error = None
    try:
        metrics = ctx.workspace.training_metrics(job)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log_step("training_report.metrics_unavailable", cid=entry.cid, run=job, error=error, level=logging.WARNING)
    has_curves = metrics is not None and any(metrics.series.values())
    if status != "completed" and not has_curves:
        return
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
