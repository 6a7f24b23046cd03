"""How far a running job has trained: its newest step (or epoch) and training loss. Pure.

Read from the same tracking store as the finished job's report (shared.domain.training.TrainingMetrics): Azure
ML's MLflow metrics as the trainer logs them while it runs, or the local stand-in's metrics.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.training import TrainingMetrics

TRAINING_LOSS_KEYS = ("train_loss", "loss")
"""The training loss as the Hugging Face trainer (Azure ML's fine-tuning step) and the local stand-in log it."""


@dataclass(frozen=True)
class TrainingProgress:
    """The newest point of the training loss: what `chatft status` and `chatft upload --follow` show."""

    unit: str
    """What `step` counts: "step" (optimizer steps, Azure ML) or "epoch" (the local stand-in)."""
    step: int
    train_loss: float

    @property
    def line(self) -> str:
        """'epoch 2, training loss 0.412'."""
        return f"{self.unit} {self.step}, training loss {self.train_loss:.3f}"


def training_loss_key(keys: list[str]) -> str | None:
    """The series that is the training loss: a known name first, else any loss that is not an evaluation's."""
    found = next((k for k in TRAINING_LOSS_KEYS if k in keys), None)
    return found or next((k for k in keys if "loss" in k.lower() and not k.lower().startswith("eval")), None)


def latest(metrics: TrainingMetrics) -> TrainingProgress | None:
    """The training loss at the newest step logged; None until the job has logged one."""
    key = training_loss_key(list(metrics.series))
    points = metrics.series.get(key, []) if key else []
    if not points:
        return None
    step, value = max(points, key=lambda p: p[0])
    return TrainingProgress(metrics.step_label, step, value)


def progress_line(metrics: TrainingMetrics) -> str:
    """'epoch 2, training loss 0.412' ("" until the job has logged a training loss)."""
    found = latest(metrics)
    return found.line if found is not None else ""
