"""The Workspace protocol: what chatft asks of an ML backend (Azure ML now, local later)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.domain.finetune.choices import UploadChoices
from shared.domain.training import TrainingMetrics

CREATED_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"
"""How the SDK puts an endpoint's creation time into `properties["createdAt"]`."""


@dataclass(frozen=True)
class FinetuneRequest:
    job_name: str
    """Deterministic per upload and attempt: a retried submission finds the job it already made."""
    data_uris: dict[str, str]
    """Split name -> azureml://datastores/<datastore>/paths/<path> of the prepared file."""
    tags: dict[str, str]
    cid: str
    choices: UploadChoices = field(default_factory=UploadChoices)
    """The upload's own model, epochs, learning rate (blob metadata), over the app's settings for this job only."""


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


@dataclass(frozen=True)
class JobInfo:
    name: str
    status: str
    studio_url: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    """The job's tags, names lower-cased (Azure treats tag names case-insensitively)."""
    error: str = ""
    """Why the job failed, in one line, when the backend knows (the local one does; Azure ML's Job has no such field)."""


@dataclass(frozen=True)
class JobLog:
    """What a job has logged so far, read whole each time (`chatft logs` prints what is new since its last read)."""

    status: str
    """The job's status when read: a terminal one (Completed, Failed, Canceled) ends `chatft logs --follow`."""
    files: tuple[tuple[str, str], ...] = ()
    """(name, text so far) of each log file, in the order to print them."""
    studio_url: str | None = None


@dataclass(frozen=True)
class RegisteredModel:
    id: str
    name: str
    version: str
    created: bool
    """False when this version already existed (a duplicate event)."""


@dataclass(frozen=True)
class EndpointInfo:
    name: str
    provisioning_state: str | None
    traffic: dict[str, int] = field(default_factory=dict)
    scoring_uri: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True)
class DeploymentInfo:
    name: str
    provisioning_state: str | None


class Workspace(Protocol):
    """Everything chatft asks of an ML backend. Long-running operations are started, never awaited."""

    def submit_finetune(self, request: FinetuneRequest) -> SubmittedJob:
        """Preflight, build and submit the fine-tuning pipeline; raise PreflightError if it cannot run."""

    def job_info(self, name: str) -> JobInfo | None: ...

    def begin_cancel_job(self, name: str) -> str:
        """Ask for the job to be canceled, without waiting: "" when asked; the job's final status when it had
        already ended (nothing to cancel). A job that does not exist raises."""

    def job_log(self, name: str) -> JobLog | None:
        """The job's log files so far (Azure ML: the files `az ml job stream` prints, and each step's; offline: the
        training process's output) and its status; None when there is no such job."""

    def training_metrics(self, job_name: str) -> TrainingMetrics:
        """The fine-tuning step's logged metrics (MLflow: key, value, timestamp, step) and the job's start and
        end; raises when the tracking store cannot be read."""

    def foundation_model_tags(self, name: str) -> dict[str, str]: ...

    def register_model(
        self, *, job_name: str, name: str, version: str, description: str, tags: dict[str, str]
    ) -> RegisteredModel:
        """Register the job's trained_model output as an MLflow model; reuse the version if it exists."""

    def get_endpoint(self, name: str) -> EndpointInfo | None: ...

    def begin_create_endpoint(self, *, name: str, description: str, tags: dict[str, str]) -> None: ...

    def set_endpoint_traffic(self, name: str, traffic: dict[str, int]) -> None: ...

    def set_endpoint_tags(self, name: str, tags: dict[str, str]) -> None:
        """Replace the endpoint's tags with exactly `tags`, changing nothing else (traffic above all): how
        `chatft keep` and `release` set the janitor's keep tag. Not awaited; a missing endpoint raises."""

    def get_deployment(self, endpoint: str, name: str) -> DeploymentInfo | None: ...

    def begin_create_deployment(self, *, endpoint: str, name: str, model_id: str, instance_type: str) -> None: ...

    def endpoint_key(self, name: str) -> str: ...

    def begin_delete_endpoint(self, name: str) -> None:
        """Start deleting; an endpoint that is already gone is fine."""

    def list_endpoints(self) -> list[EndpointInfo]: ...
