"""How far a running job has trained, in one line: its newest step (or epoch) and training loss. Pure.

Read from the same tracking store as the finished job's report (shared.domain.training.TrainingMetrics): Azure
ML's MLflow metrics as the trainer logs them while it runs, or the local stand-in's metrics.json.
"""

from __future__ import annotations

from shared.domain.training import TrainingMetrics

TRAINING_LOSS_KEYS = ("train_loss", "loss")
"""The training loss as the Hugging Face trainer (Azure ML's fine-tuning step) and the local stand-in log it."""


def training_loss_key(keys: list[str]) -> str | None:
    """The series that is the training loss: a known name first, else any loss that is not an evaluation's."""
    found = next((k for k in TRAINING_LOSS_KEYS if k in keys), None)
    return found or next((k for k in keys if "loss" in k.lower() and not k.lower().startswith("eval")), None)


def progress_line(metrics: TrainingMetrics) -> str:
    """'epoch 2, training loss 0.412' ("" until the job has logged a training loss)."""
    key = training_loss_key(list(metrics.series))
    points = metrics.series.get(key, []) if key else []
    if not points:
        return ""
    step, value = max(points, key=lambda p: p[0])
    return f"{metrics.step_label} {step}, training loss {value:.3f}"
