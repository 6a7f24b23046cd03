"""The Workspace protocol: what chatft asks of an ML backend (Azure ML now, local later)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class FinetuneRequest:
    job_name: str
    """Deterministic per upload and attempt: a retried submission finds the job it already made."""
    data_uris: dict[str, str]
    """Split name -> azureml://datastores/<datastore>/paths/<path> of the prepared file."""
    tags: dict[str, str]
    cid: str


@dataclass
class SubmittedJob:
    name: str
    display_name: str
    experiment_name: str
    studio_url: str | None = None
    already_existed: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)
    dropped_parameters: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model_id: str = ""
    compute: str = ""
    gpus_per_node: int = 0


class Workspace(Protocol):
    def submit_finetune(self, request: FinetuneRequest) -> SubmittedJob:
        """Preflight, build and submit the fine-tuning pipeline; raise PreflightError if it cannot run."""
