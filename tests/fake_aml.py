"""Hand-written fakes of the MLClient operations chatft calls where the real SDK is not run.

The workspace's endpoints, deployments, model registration, compute and job reads run the REAL MLClient over
an in-memory REST service (tests/aml_rest.py, wired in by the `aml` fixture; contract in
tests/test_aml_rest_contract.py). What stays hand-written: the registry (`MLClient(registry_name=...)` calls
the registry discovery service in its constructor), pipeline submission (it resolves components against the
registry), and the workspace client of the submission and doctor tests. Every call returns the SDK's own entity
types, and every error is the exception the SDK raises in that situation, produced by the SDK's own code where
it can be (missing_by_label) and cited where it is constructed.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from azure.ai.ml import load_component
from azure.ai.ml.entities import (
    AmlCompute,
    JobService,
    Model,
    VmSize,
    Workspace,
)
from azure.core.exceptions import ResourceNotFoundError

FIXTURE = Path(__file__).parent / "fixtures" / "chat_completion_pipeline.yaml"

PHI3_TAGS = {
    # As the registry returns them: Python-literal strings.
    "finetune_compute_allow_list": "['Standard_NC24ads_A100_v4', 'Standard_NC48ads_A100_v4', 'Standard_NC96ads_A100_v4', 'Standard_ND96asr_v4', 'Standard_ND96amsr_A100_v4']",
    "model_specific_defaults": "{'apply_deepspeed': 'true', 'deepspeed_stage': 2, 'apply_lora': 'true', 'apply_ort': 'false', 'precision': 16, 'ignore_mismatched_sizes': 'false', 'num_train_epochs': 1, 'per_device_train_batch_size': 1, 'per_device_eval_batch_size': 1, 'gradient_accumulation_steps': 1, 'learning_rate': 5e-06, 'learning_rate_min': 5e-07, 'learning_rate_max': 5e-05, 'lr_scheduler_type': 'cosine', 'logging_strategy': 'steps', 'logging_steps': 10, 'save_total_limit': 1}",
    "inference_compute_allow_list": "['Standard_NC6s_v3', 'Standard_NC24ads_A100_v4', 'Standard_NC48ads_A100_v4', 'Standard_NC96ads_A100_v4']",
    "FinetuneDeprecationDate": "2025-06-30",
    "FinetuneRetirementDate": "2025-08-30",
    "task": "chat-completion",
}

# The default FINETUNE_MODEL's tags as the registry returns them (Python-literal strings, like PHI3_TAGS),
# copied from the `tags:` of Azure/azureml-assets assets/models/system/Phi-4/spec.yaml, version 8 (commit
# 535f8e852ca6787851a7d563de7613d95dc2a8f0, before the July 2026 move of these fields into `system_metadata`;
# licenseDescription and languages left out). No FinetuneDeprecationDate/FinetuneRetirementDate: not retiring.
DEFAULT_MODEL_NAME = "Phi-4"
DEFAULT_MODEL_VERSION = "8"
DEFAULT_MODEL_TAGS = {
    "author": "Microsoft",
    "SharedComputeCapacityEnabled": "",
    "disable-batch": "true",
    "Preview": "",
    "Featured": "",
    "keywords": "Reasoning,Understanding,Low latency",
    "freePlayground": "true",
    "playgroundRateLimitTier": "low",
    "inference_supported_envs": "['vllm']",
    "license": "MIT",
    "task": "chat-completion",
    "displayName": "Phi-4",
    "summary": "Phi-4 14B, a highly capable model for low latency scenarios.",
    "textContextWindow": "16384",
    "maxOutputTokens": "16384",
    "inputModalities": "text",
    "outputModalities": "text",
    "evaluation": "evaluation.md",
    "trainingDataDate": "June 2024",
    "notes": "notes.md",
    "hiddenlayerscanned": "",
    "maas-inference": "true",
    "inference_compute_allow_list": "['Standard_NC24ads_A100_v4', 'Standard_NC48ads_A100_v4', 'Standard_NC96ads_A100_v4', 'Standard_ND96asr_v4', 'Standard_ND96amsr_A100_v4', 'Standard_ND96isr_H100_v5', 'Standard_NC40ads_H100_v5', 'Standard_NC80adis_H100_v5']",
    "finetune_compute_allow_list": "['Standard_NC24ads_A100_v4', 'Standard_NC48ads_A100_v4', 'Standard_NC96ads_A100_v4', 'Standard_ND96asr_v4', 'Standard_ND96amsr_A100_v4', 'Standard_NC40ads_H100_v5', 'Standard_NC80adis_H100_v5', 'Standard_ND96isr_H100_v5']",
    "model_specific_defaults": "{'apply_deepspeed': 'true', 'deepspeed_stage': 3, 'apply_lora': 'true', 'apply_ort': 'false', 'precision': 16, 'ignore_mismatched_sizes': 'false', 'num_train_epochs': 1, 'per_device_train_batch_size': 1, 'per_device_eval_batch_size': 1, 'gradient_accumulation_steps': 1, 'learning_rate': 5e-06, 'lr_scheduler_type': 'cosine', 'logging_strategy': 'steps', 'logging_steps': 10, 'save_total_limit': 1}",
    "benchmark": "quality",
}

SIZES = [
    VmSize(name="Standard_D12_v2", gpus=0),
    VmSize(name="Standard_NC6", gpus=1),
    VmSize(name="Standard_NC24ads_A100_v4", gpus=1),
    VmSize(name="Standard_NC48ads_A100_v4", gpus=2),
    VmSize(name="Standard_NC96ads_A100_v4", gpus=4),
]


def model(
    name: str = DEFAULT_MODEL_NAME,
    version: str = DEFAULT_MODEL_VERSION,
    tags: dict | None = None,
    stage: str | None = None,
    type: str = "mlflow_model",
) -> Model:
    """A registry model; by default the default FINETUNE_MODEL as the registry lists it. Its type is the one
    azureml-assets publishes it as (assets/models/system/Phi-4/model.yaml: `publish: type: mlflow_model`);
    without one, azure-ai-ml's Model would say custom_model (entities/_assets/_artifacts/model.py)."""
    return Model(
        name=name,
        version=version,
        tags=dict(DEFAULT_MODEL_TAGS if tags is None else tags),
        stage=stage,
        type=type,
        id=f"azureml://registries/azureml/models/{name}/versions/{version}",
    )


def not_found(what: str) -> ResourceNotFoundError:
    """What a workspace GET of a missing resource raises: the generated operations map 404 to
    ResourceNotFoundError through their `error_map` (azure/ai/ml/_restclient/arm_ml_service/operations/
    _operations.py, e.g. `ComputeOperations.get`, `JobsOperations.get`, `ModelVersionsOperations.get`:
    `error_map = {401: ClientAuthenticationError, 404: ResourceNotFoundError, 409: ResourceExistsError, ...}`).
    tests/test_aml_rest_contract.py runs the real SDK over tests/aml_rest.py and pins the same."""
    return ResourceNotFoundError(message=f"{what} not found")


class _RegistryDataPlane:
    """Stands in for the registry service client the SDK lists versions through (`send_request`), answering
    with a real azure.core.rest response (tests/aml_rest.RestResponse)."""

    class _config:  # the attribute the SDK reads
        subscription_id = "00000000-0000-0000-0000-000000000000"

    def __init__(self, status: int) -> None:
        self.status = status

    def send_request(self, request: Any, **kwargs: Any) -> Any:
        from tests.aml_rest import RestResponse

        if self.status == 200:
            body = {"value": []}
        else:
            body = {"error": {"code": "UserError", "message": "The specified resource was not found."}}
        return RestResponse(request, self.status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def missing_by_label(name: str, asset_plural: str, status: int = 200) -> Exception:
    """The exception `<assets>.get(name, label="latest")` raises in a registry for a missing asset, produced by
    the SDK's own code on the path it takes: `_resolve_label_to_asset` -> `_managed_label_resolver["latest"]`
    = `ModelOperations._get_latest_version` / `ComponentOperations._get_latest_version` -> `_get_latest`
    (azure/ai/ml/_utils/_asset_utils.py) -> `list_registry_assets` (azure/ai/ml/_utils/_registry_utils.py).
    An empty version list (status 200) gives a ValidationException with error_type RESOURCE_NOT_FOUND, not a
    ResourceNotFoundError; a 404 gives a bare HttpResponseError from `response.raise_for_status()`."""
    from azure.ai.ml._restclient.arm_ml_service.models import ComponentVersion, ModelVersion
    from azure.ai.ml._utils._asset_utils import _get_latest

    try:
        _get_latest(
            name,
            None,
            "rg",
            None,
            "azureml",
            registry_service_client=_RegistryDataPlane(status),
            asset_plural=asset_plural,
            arm_cls=ModelVersion if asset_plural == "models" else ComponentVersion,
        )
    except Exception as exc:
        return exc
    raise AssertionError("the SDK found an asset that does not exist")


class FakeModels:
    """The registry's models. By label: missing_by_label. By version: `_get_with_registry` ->
    `get_registry_versioned_asset` (azure/ai/ml/_utils/_registry_utils.py) raises ResourceNotFoundError on 404."""

    def __init__(self, models: list[Model]) -> None:
        self._models = {m.name: m for m in models}
        self.calls: list[tuple[str, str | None]] = []

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        self.calls.append((name, label))
        if name not in self._models:
            raise missing_by_label(name, "models") if label else not_found(f"model {name}")
        return self._models[name]


class FakeComponents:
    """The registry's components; missing ones raise what FakeModels raises (ComponentOperations.get ->
    `_get` -> `_resolve_label_to_asset` / `_get_component_version`, azure/ai/ml/operations/_component_operations.py)."""

    def __init__(self, path: Path = FIXTURE, missing: bool = False) -> None:
        self._component = load_component(source=str(path))
        self.missing = missing
        self.calls: list[tuple[str, str | None]] = []

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        self.calls.append((name, label))
        if self.missing:
            raise missing_by_label(name, "components") if label else not_found(f"component {name}")
        return self._component


class FakeCompute:
    """A missing cluster raises ResourceNotFoundError: ComputeOperations.get (azure/ai/ml/operations/
    _compute_operations.py) calls the generated `ComputeOperations.get`, whose error_map maps 404 to it."""

    def __init__(self, clusters: list[AmlCompute], sizes: list[VmSize]) -> None:
        self._clusters = {c.name: c for c in clusters}
        self._sizes = sizes

    def get(self, name: str) -> AmlCompute:
        if name not in self._clusters:
            raise not_found(f"compute {name}")
        return self._clusters[name]

    def list_sizes(self, *, location: str | None = None, compute_type: str | None = None) -> list[VmSize]:
        return list(self._sizes)


class FakeJobs:
    """Pipeline submission (create_or_update records the job) and jobs.get of what was submitted; a missing job
    raises ResourceNotFoundError (JobOperations.get -> `_get_job` -> generated `JobsOperations.get`, 404 in its
    error_map). `fail_with` takes the exceptions a test wants create_or_update to raise."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.fail_with: list[BaseException] = []
        self._lock = threading.Lock()
        self._jobs: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        with self._lock:
            if name not in self._jobs:
                raise not_found(f"job {name}")
            return self._jobs[name]

    def create_or_update(
        self, job: Any, *, experiment_name: str | None = None, tags: dict | None = None, **kwargs: Any
    ) -> Any:
        with self._lock:
            if self.fail_with:
                raise self.fail_with.pop(0)
            self.created.append({"job": job, "experiment_name": experiment_name, "tags": tags})
            job.experiment_name = experiment_name
            job.tags = dict(tags or {})
            job.services = {"Studio": JobService(endpoint=f"https://ml.azure.com/runs/{job.name}")}
            job._status = "Running"
            self._jobs[job.name] = job
            return job


class FakeRegistryClient:
    def __init__(self, models: list[Model] | None = None, component_path: Path = FIXTURE) -> None:
        self.models = FakeModels(models if models is not None else [model()])
        self.components = FakeComponents(component_path)


class FakeWorkspaces:
    def get(self, name: str | None = None) -> Workspace:
        return Workspace(name=name or "ws-chatft", location="eastus")


class FakeWorkspaceClient:
    """The workspace side for submission and doctor tests. Endpoints, deployments and model registration are
    not faked here: those tests run the real MLClient over tests/aml_rest.py (the `aml` fixture)."""

    def __init__(self, clusters: list[AmlCompute] | None = None, sizes: list[VmSize] | None = None) -> None:
        self.workspaces = FakeWorkspaces()
        self.compute = FakeCompute(clusters or [], SIZES if sizes is None else sizes)
        self.jobs = FakeJobs()
