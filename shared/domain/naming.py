"""Names derived from user input (blob names) made safe for storage paths and, later, Azure ML."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
MAX_DATASET = 64


def is_upload(blob_name: str) -> bool:
    """Only `*.jsonl` uploads are ours to ingest (case-insensitive)."""
    return blob_name.lower().endswith(".jsonl")


def dataset_name(blob_name: str) -> str:
    """'Team A/Chats 2024.jsonl' -> 'team-a-chats-2024': lowercase, [a-z0-9._-], folders joined by '-'."""
    path = PurePosixPath(blob_name)
    stem = "/".join([*path.parent.parts, path.stem]) if path.parent.parts else path.stem
    name = _UNSAFE.sub("-", stem.lower()).strip("-._")
    name = re.sub(r"-{2,}", "-", name)[:MAX_DATASET].rstrip("-._")
    return name or "dataset"


def prepared_prefix(blob_name: str, sha256: str) -> str:
    """Where an upload's prepared files and report live: content-addressed, so retries rewrite the same bytes."""
    return dataset_prefix(dataset_name(blob_name), sha256)


def dataset_prefix(dataset: str, sha256: str) -> str:
    """The same place, from the dataset name and hash a job's tags carry."""
    return f"{dataset}/{sha256[:16]}"


def correlation_id(sha256: str) -> str:
    """The upload's id in every log line, from upload through job, model and endpoint."""
    return sha256[:12]


_AML_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_AML_DISPLAY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
AML_NAME_MAX = 255


def aml_name(text: str, max_length: int = AML_NAME_MAX) -> str:
    """A job/experiment/asset-safe name: starts alphanumeric, then [A-Za-z0-9_-], at most max_length."""
    name = re.sub(r"-{2,}", "-", _AML_NAME_UNSAFE.sub("-", text)).strip("-_")
    name = name[:max_length].rstrip("-_")
    return name if name and name[0].isalnum() else f"x{name}"[:max_length]


def job_name(blob_name: str, sha256: str, attempt: int) -> str:
    """Deterministic per upload and attempt, so a retried submission finds the job it already made."""
    return aml_name(f"chatft-{dataset_name(blob_name)[:40]}-{sha256[:12]}-a{attempt}")


def display_name(model: str, params: dict[str, object], gpus_per_node: int) -> str:
    """The notebook's display name, sanitised and shortened for Azure ML."""

    def number(key: str, default: int) -> int:
        value = params.get(key)
        return int(value) if value is not None else default  # type: ignore[call-overload]

    batch = (
        number("per_device_train_batch_size", 1)
        * number("gradient_accumulation_steps", 1)
        * gpus_per_node
        * number("num_nodes_finetune", 1)
    )
    deepspeed = f"ds{params.get('deepspeed_stage', 2)}" if params.get("apply_deepspeed") == "true" else "nods"
    lora = "lora" if params.get("apply_lora") == "true" else "nolora"
    raw = (
        f"{model}-ultrachat-bs{batch}-{params.get('lr_scheduler_type', 'linear')}-{deepspeed}-{lora}"
        f"-save_limit{number('save_total_limit', -1)}-seqlen{number('max_seq_length', -1)}"
    )
    return _AML_DISPLAY_UNSAFE.sub("-", raw)[:AML_NAME_MAX]
