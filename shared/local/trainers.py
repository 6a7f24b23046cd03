"""The local backend's two fine-tuning jobs (LOCAL_TRAINER): whether the chosen one can run on this machine,
checked before a job is submitted, and the line that tells the user which one trains.

Nothing here imports torch: the checks are shared.local.lora.base's cheap ones, so preflight and `chatft doctor`
stay fast and work without the training extra.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from typing import Any

from shared.domain.finetune.errors import PreflightError
from shared.settings import Settings

RETRIEVAL = "retrieval"
LORA = "lora"


def trainer_of(record: dict[str, Any]) -> str:
    """The trainer a job was submitted with (kept in job.json, so a resumed job keeps it); a record written
    before there was a choice ran the retrieval stand-in."""
    return str(record.get("trainer") or RETRIEVAL)


def trainer_problem(settings: Settings) -> PreflightError | None:
    """Why LOCAL_TRAINER=lora cannot train here (the training extra missing, LOCAL_BASE_MODEL unreadable), as one
    line naming the setting; None when it can, or when the retrieval stand-in trains."""
    return lora_problem(settings.local_base_model) if settings.local_trainer == LORA else None


def lora_problem(base_model: str) -> PreflightError | None:
    """Why LoRA cannot train `base_model` (LOCAL_BASE_MODEL) here, or None."""
    from shared.local.lora.base import base_model_problem, training_extra_problem

    if problem := training_extra_problem():
        return PreflightError(problem, "LOCAL_TRAINER")
    if problem := base_model_problem(base_model):
        return PreflightError(problem, "LOCAL_BASE_MODEL")
    return None


def likely_device() -> str:
    """Where torch will train, told without importing it (that takes seconds): the GPU when torch is a CUDA build,
    an NVIDIA driver is loaded and CUDA_VISIBLE_DEVICES hides no GPU, else the CPU. The job's metrics record
    the device torch really used."""
    try:
        build = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "CPU"
    if "+cpu" in build or os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() in ("", "-1"):
        return "CPU"
    gpus = Path("/proc/driver/nvidia/gpus")
    return "GPU" if gpus.is_dir() and any(gpus.iterdir()) else "CPU"


def trainer_line(settings: Settings) -> str:
    """The submission's warning: what the local backend trains instead of the foundation model."""
    if settings.local_trainer == LORA:
        return f"local backend: LoRA fine-tuning of {settings.local_base_model} on the {likely_device()}"
    return "local backend: a retrieval model is trained instead of fine-tuning the foundation model"


def trained_by(record: dict[str, Any]) -> str | None:
    """The report's line on what trained a finished job and where, from its own record (the device torch really
    used, not the guess at submission); None while the job has no metrics."""
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        return None
    if trainer_of(record) == LORA:
        speed = metrics.get("tokens_per_second")
        tokens = metrics.get("train_tokens")
        done = (
            f": {tokens:,} tokens at {speed:,} tokens/s" if isinstance(tokens, int) and isinstance(speed, int) else ""
        )
        return (
            f"trained by LoRA on {record.get('local_base_model') or 'tiny'}, on {metrics.get('device') or 'cpu'}{done}"
        )
    return "trained by the retrieval stand-in on the CPU (no foundation model is fine-tuned)"
