"""Training curves and cost for the report: pure computations, no I/O.

A finished job's metrics (loss and evaluation metrics per step or epoch of the fine-tuning step,
as MLflow logs them: key, value, timestamp, step) become a compact table, the layout of a line
chart (drawn by `shared.azure.chart`), and the job's duration, GPU hours and estimated cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

CHART_FILE = "training.png"
CHART_SIZE = (800, 480)
TABLE_ROWS = 12
"""At most this many rows in report.md's table (evenly spread, always the first and last)."""
NOISE = ("learning_rate", "epoch", "grad_norm", "runtime", "per_second", "total_flos", "step")
"""Metric keys that are bookkeeping, not training curves (the HF Trainer logs them too)."""
PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75))


@dataclass(frozen=True)
class TrainingMetrics:
    """What a backend read from a finished job's tracking store."""

    series: dict[str, list[tuple[int, float]]]
    """Metric key -> (step, value), in step order."""
    step_label: str = "step"
    """What a step counts: "step" (optimizer steps, Azure ML) or "epoch" (the local stand-in)."""
    started_at: float | None = None
    """Epoch seconds of the job's start and end, when the tracking store knows them."""
    ended_at: float | None = None
    run_id: str = ""
    """The run the series come from (the fine-tuning step's)."""
    notes: list[str] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None or self.ended_at < self.started_at:
            return None
        return self.ended_at - self.started_at


def curve_keys(keys: list[str]) -> list[str]:
    """The keys worth a curve: losses first, then evaluation metrics; bookkeeping dropped."""
    kept = [k for k in keys if not any(n in k.lower() for n in NOISE) or "loss" in k.lower()]
    return sorted(kept, key=lambda k: ("loss" not in k.lower(), k.startswith("eval"), k))


def points(history: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """MLflow Metric JSON objects (key, value, timestamp, step) -> (step, value) by step; the last value
    logged at a step wins; NaN, infinities and unreadable values are dropped.

    proto3 JSON omits fields at their default, so a missing step, value or timestamp is 0; int64 fields may
    arrive as strings, and NaN / infinities as the strings "NaN", "Infinity", "-Infinity"
    (https://protobuf.dev/programming-guides/json/)."""
    by_step: dict[int, tuple[float, float]] = {}
    for m in history:
        try:
            value = float(m.get("value", 0.0))
            step = int(m.get("step", 0))
            timestamp = float(m.get("timestamp", 0))
        except (TypeError, ValueError, AttributeError):
            continue
        if math.isfinite(value) and (step not in by_step or timestamp >= by_step[step][0]):
            by_step[step] = (timestamp, value)
    return [(step, by_step[step][1]) for step in sorted(by_step)]


def gpu_hours(duration_seconds: float | None, nodes: int, gpus_per_node: int) -> float | None:
    if duration_seconds is None:
        return None
    return duration_seconds / 3600 * max(nodes, 0) * max(gpus_per_node, 0)


def estimated_cost(hours: float | None, price_per_hour: float | str | None) -> float | None:
    """hours x price, or None when either is unknown (an empty price setting means hours only)."""
    if hours is None or price_per_hour in (None, ""):
        return None
    return round(hours * float(price_per_hour), 2)


def table(metrics: TrainingMetrics, max_rows: int = TABLE_ROWS) -> tuple[list[str], list[list[float | None]]]:
    """(columns, rows): one row per step (evenly thinned to `max_rows`), one column per curve."""
    keys = list(metrics.series)
    values = {k: dict(metrics.series[k]) for k in keys}
    steps = sorted({s for k in keys for s in values[k]})
    if len(steps) > max_rows:
        picks = {round(i * (len(steps) - 1) / (max_rows - 1)) for i in range(max_rows)}
        steps = [steps[i] for i in sorted(picks)]
    rows = [[float(s), *(_round(values[k].get(s)) for k in keys)] for s in steps]
    return [metrics.step_label, *keys], rows


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")


@dataclass(frozen=True)
class Line:
    label: str
    color: tuple[int, int, int]
    pixels: list[tuple[float, float]]


@dataclass(frozen=True)
class ChartLayout:
    """Everything the renderer draws, in pixels: no decisions are left to it."""

    size: tuple[int, int]
    title: str
    plot: tuple[int, int, int, int]
    """left, top, right, bottom of the plotting area."""
    x_label: str
    y_label: str
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    lines: list[Line]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 x a power of ten apart)."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def chart_layout(metrics: TrainingMetrics, title: str, size: tuple[int, int] = CHART_SIZE) -> ChartLayout | None:
    """A line chart of every curve on one axis; None when no curve has a point."""
    series = {k: v for k, v in metrics.series.items() if v}
    if not series:
        return None
    width, height = size
    plot = (70, 50, width - 190, height - 60)
    steps = [s for v in series.values() for s, _ in v]
    values = [y for v in series.values() for _, y in v]
    x_ticks = nice_ticks(min(steps), max(steps), 6)
    if max(steps) == min(steps):
        x_ticks = [min(steps) - 1, min(steps), min(steps) + 1]
    y_ticks = nice_ticks(min(values), max(values), 6)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    left, top, right, bottom = plot

    def px(step: float, value: float) -> tuple[float, float]:
        return (
            left + (step - x0) / (x1 - x0) * (right - left),
            bottom - (value - y0) / (y1 - y0) * (bottom - top),
        )

    lines = [
        Line(key, PALETTE[i % len(PALETTE)], [px(s, v) for s, v in pts]) for i, (key, pts) in enumerate(series.items())
    ]
    return ChartLayout(
        size=size,
        title=title,
        plot=plot,
        x_label=metrics.step_label,
        y_label="value",
        x_ticks=[(px(t, y0)[0], _fmt(t)) for t in x_ticks],
        y_ticks=[(px(x0, t)[1], _fmt(t)) for t in y_ticks],
        lines=lines,
    )


def training_section(
    metrics: TrainingMetrics | None,
    *,
    job: str,
    status: str,
    compute: str,
    instance_type: str,
    nodes: int,
    gpus_per_node: int,
    price_per_gpu_hour: float | str,
    chart: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The report's "training" section (report.json); report.md renders it as a table."""
    duration = metrics.duration_seconds if metrics else None
    hours = gpu_hours(duration, nodes, gpus_per_node)
    cost = estimated_cost(hours, price_per_gpu_hour)
    section: dict[str, Any] = {
        "status": status,
        "job": job,
        "duration_seconds": round(duration, 1) if duration is not None else None,
        "compute": compute,
        "instance_type": instance_type,
        "nodes": nodes,
        "gpus_per_node": gpus_per_node,
        "gpu_hours": round(hours, 3) if hours is not None else None,
        "price_per_gpu_hour_usd": float(price_per_gpu_hour) if price_per_gpu_hour not in ("", None) else None,
        "estimated_cost_usd": cost,
    }
    if metrics is None or not any(metrics.series.values()):
        section["metrics"] = f"metrics unavailable: {error or 'the job logged no training metrics'}"
        return section
    columns, rows = table(metrics)
    section.update(
        run=metrics.run_id,
        step=metrics.step_label,
        columns=columns,
        rows=rows,
        final={k: _round(v[-1][1]) for k, v in metrics.series.items() if v},
        chart=chart,
    )
    if metrics.notes:
        section["notes"] = list(metrics.notes)
    return section


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def render_training(d: dict[str, Any]) -> list[str]:
    """report.md's "Training" section from the report.json section."""
    out = ["", "## Training", "", f"- Status: **{d.get('status')}**, job `{d.get('job')}`"]
    out.append(f"- Duration: {duration_text(d.get('duration_seconds'))}")
    out.append(
        f"- Compute: {d.get('compute') or 'unknown'} ({d.get('instance_type') or 'size unknown'}), "
        f"{d.get('nodes')} node(s) x {d.get('gpus_per_node')} GPU(s)"
    )
    hours = d.get("gpu_hours")
    out.append(f"- GPU hours: {'unknown' if hours is None else f'{hours:.3f}'}")
    if d.get("estimated_cost_usd") is not None:
        out.append(
            f"- Estimated cost: ${d['estimated_cost_usd']:.2f} (at ${d['price_per_gpu_hour_usd']:g} per GPU hour, "
            "GPU_HOURLY_PRICE_USD)"
        )
    else:
        out.append("- Estimated cost: not estimated (GPU_HOURLY_PRICE_USD is empty, or the duration is unknown)")
    if d.get("metrics"):
        out.append(f"- {d['metrics'][0].upper()}{d['metrics'][1:]}")
        return out
    if d.get("chart"):
        out += ["", f"![training curves]({d['chart']})"]
    columns, rows = d.get("columns") or [], d.get("rows") or []
    out += ["", "| " + " | ".join(columns) + " |", "|" + "---:|" * len(columns)]
    for row in rows:
        cells = [f"{int(row[0])}", *("" if v is None else f"{v:g}" for v in row[1:])]
        out.append("| " + " | ".join(cells) + " |")
    for note in d.get("notes") or []:
        out.append(f"- Note: {note}")
    return out


def endpoint_uptime(live_at: str | None, retired_at: str | None, instance_type: str, price: float | None) -> str:
    """The deployment section's line when the janitor retires an endpoint: hours up and estimated cost
    at the instance type's hourly list price (one instance; None: unknown)."""
    from datetime import datetime

    if not live_at or not retired_at:
        return "unknown (the endpoint never went live)"
    hours = max((datetime.fromisoformat(retired_at) - datetime.fromisoformat(live_at)).total_seconds(), 0) / 3600
    if price is None:
        return f"{hours:.2f} h up (1 instance of {instance_type or 'an unknown size'}; no list price known)"
    return f"{hours:.2f} h up, about ${hours * price:.2f} (1 instance of {instance_type} at ${price:g}/h list price)"
