"""training.png agrees with itself (issue 21 item 13): losses and evaluation metrics on their own panels and axes
(Azure ML's losses near 2 and a token F1 near 1 both readable), every curve off the frame (a flat one shows), and
no text over another. Pillow draws it headless (shared.azure.chart)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.domain.training import CHART_SIZE, TrainingMetrics, chart_layout


def _azure_like() -> TrainingMetrics:
    """Azure ML's fine-tuning step logs loss near 2 by optimizer step, an eval loss, and a metric near 1."""
    steps = range(0, 201, 10)
    return TrainingMetrics(
        series={
            "train_loss": [(s, 2.2 - s / 400) for s in steps],
            "eval_loss": [(s, 2.1 - s / 500) for s in steps[::5]],
            "eval_token_f1": [(s, 0.90 + s / 5000) for s in steps[::5]],
        },
        step_label="step",
    )


def _flat() -> TrainingMetrics:
    """The stand-in's train loss on a small file: the same value every epoch."""
    return TrainingMetrics(
        series={
            "train_loss": [(e, 0.0075) for e in (1, 2, 3)],
            "eval_loss": [(1, 0.3579), (2, 0.1926), (3, 0.1035)],
            "eval_token_f1": [(1, 0.6421), (2, 0.8074), (3, 0.8965)],
        },
        step_label="epoch",
    )


def _panel_of(layout, key: str):
    return next(p for p in layout.panels if any(line.label == key for line in p.lines))


def _line(panel, key: str):
    return next(line for line in panel.lines if line.label == key)


def test_losses_and_metrics_get_their_own_panels_and_both_are_readable() -> None:
    layout = chart_layout(_azure_like(), "chatft training: job")
    loss, metric = _panel_of(layout, "train_loss"), _panel_of(layout, "eval_token_f1")
    assert loss is _panel_of(layout, "eval_loss") and loss is not metric
    for panel, key in ((loss, "train_loss"), (metric, "eval_token_f1")):
        _, top, _, bottom = panel.plot
        ys = [y for _, y in _line(panel, key).pixels]
        assert max(ys) - min(ys) >= 0.4 * (bottom - top), f"{key} is squashed into a sliver of its panel"


@pytest.mark.parametrize("metrics", [_azure_like(), _flat()], ids=["azure", "flat"])
def test_every_curve_is_drawn_inside_its_panel_never_on_the_frame(metrics) -> None:
    layout = chart_layout(metrics, "chatft training: job")
    for panel in layout.panels:
        left, top, right, bottom = panel.plot
        for line in panel.lines:
            for x, y in line.pixels:
                assert left <= x <= right and top + 4 <= y <= bottom - 4, (line.label, y, panel.plot)


@pytest.mark.parametrize("metrics", [_azure_like(), _flat()], ids=["azure", "flat"])
def test_no_label_overlaps_another_or_leaves_the_image(metrics) -> None:
    """Each text's box as Pillow draws it (ImageDraw.textbbox with the renderer's font and anchor) is inside the
    image and meets no other text: the axis name never sits on a tick value, as 'value' did on '0.4'."""
    from PIL import Image, ImageDraw, ImageFont

    layout = chart_layout(metrics, "chatft training: chatft-demo-chat_sample-717136e1260f-a1")
    draw = ImageDraw.Draw(Image.new("RGB", layout.size))
    boxes = [
        (
            label.text,
            draw.textbbox((label.x, label.y), label.text, ImageFont.load_default(size=label.size), label.anchor),
        )
        for label in layout.labels
    ]
    width, height = layout.size
    for text, (x0, y0, x1, y1) in boxes:
        assert x0 >= 0 and x1 <= width and y0 >= 0 and y1 <= height, text
    for i, (a, (ax0, ay0, ax1, ay1)) in enumerate(boxes):
        for b, (bx0, by0, bx1, by1) in boxes[i + 1 :]:
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, f"{a!r} overlaps {b!r}"


def test_the_chart_renders_headless(tmp_path: Path) -> None:
    """Pillow draws it without a display; the PNG has the layout's size ."""
    import io

    from PIL import Image

    from shared.azure.chart import render_png

    for name, metrics in (("azure", _azure_like()), ("flat", _flat())):
        png = render_png(chart_layout(metrics, f"chatft training: {name}"))
        assert Image.open(io.BytesIO(png)).size == CHART_SIZE
        (tmp_path / f"{name}.png").write_bytes(png)
