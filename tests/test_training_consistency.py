"""The training chart and report agree with themselves (issue 21 item 13): the stand-in trains for the job's
num_train_epochs, the DeepSpeed line says what the parameters sent say, and the chart keeps losses and metrics
readable on their own axes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import shared.local.train_job as train_job
from shared.domain.chatdata.report import render_markdown
from shared.domain.finetune.choices import UploadChoices
from shared.domain.training import CHART_SIZE, TrainingMetrics, chart_layout
from shared.domain.workspace import FinetuneRequest
from shared.local.backend import LocalWorkspace
from shared.local.state import read_json
from shared.settings import Settings
from tests.test_local_train_job import job  # noqa: F401  (a job folder with splits in Azurite)


def _epochs_logged(folder: Path) -> list[int]:
    metrics = read_json(folder / "metrics.json")["metrics"]
    return sorted({m["step"] for m in metrics if m["key"] == "train_loss"})


@pytest.mark.parametrize("epochs", [1, 2, 4])
def test_the_stand_in_trains_for_the_jobs_num_train_epochs(job: Path, epochs: int) -> None:  # noqa: F811
    record = json.loads((job / "job.json").read_text())
    (job / "job.json").write_text(json.dumps({**record, "params": {"num_train_epochs": epochs}}))
    assert train_job.run(job) == 0
    assert _epochs_logged(job) == list(range(1, epochs + 1))


def test_a_job_record_without_params_trains_the_default_epochs(job: Path) -> None:  # noqa: F811
    """A job.json written before the parameters were kept (a resumed job) trains chatft's default, 3."""
    assert train_job.run(job) == 0
    assert _epochs_logged(job) == [1, 2, 3]


def _submit(tmp_path: Path, choices: UploadChoices) -> tuple[dict, Path]:
    """Submit to the local backend; its job (no data here) fails at once, and the backend is shut down."""
    workspace = LocalWorkspace(Settings.from_env({"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(tmp_path / "s")}))
    try:
        request = FinetuneRequest(job_name="j-1", data_uris={}, tags={}, cid="c", choices=choices)
        result = workspace.submit_finetune(request)
    finally:
        workspace.shutdown()
    return result.parameters, tmp_path / "s" / "jobs" / "j-1" / "job.json"


def test_the_local_job_record_keeps_the_parameters_it_was_sent(tmp_path: Path) -> None:
    params, record = _submit(tmp_path, UploadChoices(epochs="2"))
    assert params["num_train_epochs"] == 2
    assert read_json(record)["params"] == params


def test_deepspeed_off_sends_no_stage_and_the_report_says_off(tmp_path: Path) -> None:
    """The local stand-in runs without DeepSpeed: it sends apply_deepspeed=false and no deepspeed_stage (the
    component reads the stage only when DeepSpeed is on), and the report says "off", not "stage 2"."""
    params, _ = _submit(tmp_path, UploadChoices())
    assert params["apply_deepspeed"] == "false" and "deepspeed_stage" not in params
    md = _report({"status": "submitted", "parameters": params})
    assert "- DeepSpeed: off (apply_deepspeed=false)" in md
    assert "deepspeed_stage" not in md


def test_the_deepspeed_line_follows_the_parameters_sent() -> None:
    """Phi-4's model_specific_defaults turn DeepSpeed stage 3 on (Azure/azureml-assets
    assets/models/system/Phi-4/spec.yaml, tags.model_specific_defaults): the line says the stage that was sent."""
    md = _report({"status": "submitted", "parameters": {"apply_deepspeed": "true", "deepspeed_stage": "3"}})
    assert "- DeepSpeed: stage 3 (apply_deepspeed=true, deepspeed_stage=3)" in md


def _report(submission: dict) -> str:
    return render_markdown(
        {
            "source": "x.jsonl",
            "valid": True,
            "conversations": 20,
            "splits": {"train": 18, "validation": 1, "test": 1},
            "stats": {"lines": 20, "blank_lines": 0, "bytes_read": 1, "conversations": 0},
            "error_totals": {},
            "warning_totals": {},
            "errors": [],
            "warnings": [],
            "submission": submission,
        }
    )


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
