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
    return f"{dataset_name(blob_name)}/{sha256[:16]}"


def correlation_id(sha256: str) -> str:
    """The upload's id in every log line, from upload through job, model and endpoint."""
    return sha256[:12]
