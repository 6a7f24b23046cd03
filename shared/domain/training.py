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
class Label:
    """A piece of text and where it goes: `anchor` is Pillow's two-letter text anchor (l/m/r, t/m/b)."""

    x: float
    y: float
    text: str
    size: int = 13
    anchor: str = "mm"


@dataclass(frozen=True)
class Panel:
    """One plotting area with its own value axis: losses in one, evaluation metrics in another."""

    plot: tuple[int, int, int, int]
    """left, top, right, bottom."""
    grid_x: list[float]
    grid_y: list[float]
    lines: list[Line]


@dataclass(frozen=True)
class ChartLayout:
    """Everything the renderer draws, in pixels: no decisions are left to it."""

    size: tuple[int, int]
    panels: list[Panel]
    labels: list[Label]
    """Every text drawn (title, tick values, axis names, legend), placed so that none overlaps another."""
    legend: list[tuple[float, float, tuple[int, int, int]]]
    """x, y and colour of each legend swatch (its label is in `labels`)."""


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


FONT, TITLE_FONT = 13, 16
CHAR_WIDTH = 0.8
"""Text width reserved per character, as a share of the font size: wider than the renderer's font draws
(digits about 0.6, lowercase about 0.5), so reserved space always holds the text."""
GAP = 8
"""Pixels between a label and what it labels."""


def text_width(text: str, size: int = FONT) -> float:
    return len(text) * size * CHAR_WIDTH


def padded_range(values: list[float]) -> tuple[float, float]:
    """A value range with room above and below: a flat or extreme curve is drawn inside the panel, never on
    its frame (8 % of the span each side; a flat curve gets 10 % of its value, or 0.05)."""
    low, high = min(values), max(values)
    span = high - low
    pad = span * 0.08 if span > 0 else (abs(low) * 0.1 or 0.05)
    return low - pad, high + pad


def chart_layout(metrics: TrainingMetrics, title: str, size: tuple[int, int] = CHART_SIZE) -> ChartLayout | None:
    """Curves by step, losses and evaluation metrics in separate panels with their own value axes (Azure ML's
    losses near 2 and a token F1 near 1 are both readable); None when no curve has a point."""
    series = {k: v for k, v in metrics.series.items() if v}
    if not series:
        return None
    groups = [
        (name, {k: v for k, v in series.items() if ("loss" in k.lower()) == is_loss})
        for name, is_loss in (("loss", True), ("metrics", False))
    ]
    groups = [(name, group) for name, group in groups if group]
    colors = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(series)}
    width, height = size
    steps = [s for v in series.values() for s, _ in v]
    x_ticks = nice_ticks(min(steps), max(steps), 6)
    if max(steps) == min(steps):
        x_ticks = [min(steps) - 1, min(steps), min(steps) + 1]
    elif len(x_ticks) > 1 and x_ticks[1] - x_ticks[0] < 1:  # steps and epochs are whole: no tick at 1.5
        x_ticks = list(range(int(min(steps)), int(max(steps)) + 1))
    y_ticks_of = {name: nice_ticks(*padded_range([y for v in g.values() for _, y in v]), 5) for name, g in groups}
    widest_tick = max(text_width(_fmt(t)) for ticks in y_ticks_of.values() for t in ticks)
    left = int(16 + widest_tick + GAP)
    legend_width = max(text_width(k[:24]) for k in series) + 28 + 16
    right = int(width - legend_width - 12)
    top, bottom = 40 + TITLE_FONT, height - (FONT + GAP) * 2 - 10
    panel_gap = FONT + GAP * 2  # room for the next panel's name
    panel_height = (bottom - top - panel_gap * (len(groups) - 1) - FONT - GAP) / len(groups)
    x0, x1 = x_ticks[0], x_ticks[-1]

    def x_px(step: float) -> float:
        return left + (step - x0) / (x1 - x0) * (right - left)

    labels = [Label(width / 2, 18, title, TITLE_FONT, "mm")]
    panels, legend = [], []
    y = top
    for name, group in groups:
        p_top = int(y + FONT + GAP)  # the panel's name sits above it
        p_bottom = int(p_top + panel_height)
        ticks = y_ticks_of[name]
        y0, y1 = ticks[0], ticks[-1]

        def y_px(value: float, y0: float = y0, y1: float = y1, p_top: int = p_top, p_bottom: int = p_bottom):
            return p_bottom - (value - y0) / (y1 - y0) * (p_bottom - p_top)

        lines = [Line(k, colors[k], [(x_px(s), y_px(v)) for s, v in pts]) for k, pts in group.items()]
        panels.append(
            Panel((left, p_top, right, p_bottom), [x_px(t) for t in x_ticks], [y_px(t) for t in ticks], lines)
        )
        labels.append(Label((left + right) / 2, p_top - GAP / 2, name, FONT, "mb"))
        labels += [Label(left - GAP, y_px(t), _fmt(t), FONT, "rm") for t in ticks]
        for i, k in enumerate(group):
            swatch_y = p_top + 8 + i * 22
            legend.append((right + 16, swatch_y, colors[k]))
            labels.append(Label(right + 16 + 28, swatch_y, k[:24], FONT, "lm"))
        y = p_bottom + panel_gap - FONT - GAP
    last = panels[-1].plot[3]
    labels += [Label(x_px(t), last + GAP, _fmt(t), FONT, "mt") for t in x_ticks]
    labels.append(Label((left + right) / 2, last + GAP * 2 + FONT, metrics.step_label, FONT, "mt"))
    return ChartLayout(size=size, panels=panels, labels=labels, legend=legend)


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
