"""Deterministic names for what a finished job creates, so duplicate events reuse them."""

from __future__ import annotations

import hashlib
import re

from shared.domain.naming import aml_name

ENDPOINT_MAX = 32
_ENDPOINT_UNSAFE = re.compile(r"[^a-z0-9-]+")


def registered_model_name(base_model: str, dataset: str, suffix: str = "") -> str:
    """<base model>-<dataset>[-<suffix>], slashes to dashes, AML-safe (letters, digits, '-', '_'; at most 255):
    e.g. Phi-4-support-chats-v2. One model per dataset, whose versions are its jobs; the suffix (REGISTERED_MODEL_SUFFIX
    or the upload's chatft_suffix) tells runs on the same data apart, as the OpenAI fine-tuning suffix does."""
    parts = [base_model.replace("/", "-"), dataset, suffix]
    return aml_name("-".join(part for part in parts if part))


def model_version(job_name: str) -> str:
    """Digits derived from the job: the same job always registers (or finds) the same version."""
    return str(int(hashlib.sha256(job_name.encode()).hexdigest()[:12], 16) % 10**12)


def endpoint_name(dataset: str, job_name: str, workspace_id: str) -> str:
    """3-32 chars, ^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$, unique per region: dataset prefix + job/workspace hash."""
    digest = hashlib.sha256(f"{workspace_id.lower()}|{job_name}".encode()).hexdigest()[:10]
    prefix = re.sub(r"-{2,}", "-", _ENDPOINT_UNSAFE.sub("-", dataset.lower())).strip("-")[:12].rstrip("-")
    name = f"cft-{prefix}-{digest}" if prefix else f"cft-{digest}"
    return name[:ENDPOINT_MAX]


ENDPOINT_NAME = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
