"""Fakes of the MLClient operations chatft calls, at the network boundary only.

Every call returns the SDK's own entity types (Model, AmlCompute, VmSize, the component loaded
from our YAML fixture, the PipelineJob that was submitted), and every call is recorded.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from azure.ai.ml import load_component
from azure.ai.ml.entities import (
    AmlCompute,
    EndpointAuthKeys,
    JobService,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    VmSize,
    Workspace,
)
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

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

SIZES = [
    VmSize(name="Standard_D12_v2", gpus=0),
    VmSize(name="Standard_NC6", gpus=1),
    VmSize(name="Standard_NC24ads_A100_v4", gpus=1),
    VmSize(name="Standard_NC48ads_A100_v4", gpus=2),
    VmSize(name="Standard_NC96ads_A100_v4", gpus=4),
]


def model(
    name: str = "Phi-3-mini-4k-instruct", version: str = "15", tags: dict | None = None, stage: str | None = None
) -> Model:
    return Model(
        name=name,
        version=version,
        tags=dict(PHI3_TAGS if tags is None else tags),
        stage=stage,
        id=f"azureml://registries/azureml/models/{name}/versions/{version}",
    )


def not_found(what: str) -> ResourceNotFoundError:
    return ResourceNotFoundError(message=f"{what} not found")


class _NotFoundResponse:
    """What the registry's data plane answers for a missing asset container: 404."""

    status_code, reason, headers, content_type = 404, "Not Found", {}, "application/json"

    def __init__(self, request: Any) -> None:
        self.request = request

    def text(self, encoding: str | None = None) -> str:
        return '{"error": {"code": "UserError", "message": "Not found"}}'


class _RegistryDataPlane:
    """Stands in for the registry service client the SDK sends its container GET through."""

    class _config:  # the attribute the SDK reads
        subscription_id = "00000000-0000-0000-0000-000000000000"

    def send_request(self, request: Any) -> _NotFoundResponse:
        return _NotFoundResponse(request)


def missing_by_label(name: str, asset_plural: str) -> Exception:
    """The exception `<assets>.get(name, label="latest")` raises in a registry for a missing asset,
    produced by the SDK's own code: `_resolve_label_to_asset` -> `_get_latest_version_from_container`
    (azure/ai/ml/_utils/_asset_utils.py) turns the container GET's 404 into a ValidationException
    with error_type RESOURCE_NOT_FOUND, not a ResourceNotFoundError."""
    from azure.ai.ml._utils._asset_utils import _get_latest_version_from_container

    try:
        _get_latest_version_from_container(
            name,
            None,
            "rg",
            registry_name="azureml",
            registry_service_client=_RegistryDataPlane(),
            asset_plural=asset_plural,
        )
    except Exception as exc:
        return exc
    raise AssertionError("the SDK found an asset that does not exist")


class FakeModels:
    def __init__(self, models: list[Model]) -> None:
        self._models = {m.name: m for m in models}
        self.calls: list[tuple[str, str | None]] = []

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        self.calls.append((name, label))
        if name not in self._models:
            raise missing_by_label(name, "models") if label else not_found(f"model {name}")
        return self._models[name]


class FakeComponents:
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
    def __init__(self, clusters: list[AmlCompute], sizes: list[VmSize]) -> None:
        self._clusters = {c.name: c for c in clusters}
        self._sizes = sizes

    def get(self, name: str) -> AmlCompute:
        if name not in self._clusters:
            raise not_found(f"compute {name}")
        return self._clusters[name]

    def list_sizes(self, *, location: str | None = None, compute_type: str | None = None) -> list[VmSize]:
        return list(self._sizes)


WORKSPACE_ARM = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-chatft/providers/Microsoft.MachineLearningServices/workspaces/ws-chatft"


class FakePoller:
    """What begin_* returns: an LRO handle that reports progress. chatft never waits on it."""

    def __init__(self, describe: Any) -> None:
        self._describe = describe

    def status(self) -> str:
        return self._describe()

    def done(self) -> bool:
        return self.status() in ("Succeeded", "Failed", "Canceled")

    def result(self, timeout: float | None = None) -> Any:
        raise AssertionError("chatft must not wait on long-running operations")


class _Progressing:
    """Resources whose provisioning_state moves Creating/Updating -> Succeeded (or Failed) after N reads."""

    def __init__(self, reads_to_finish: int) -> None:
        self.reads_to_finish = reads_to_finish
        self.fail_next: list[str] = []
        self._reads: dict[str, int] = {}
        self._outcome: dict[str, str] = {}

    def _started(self, key: str) -> None:
        self._reads[key] = 0
        self._outcome[key] = "Failed" if self.fail_next and self.fail_next.pop(0) == key else "Succeeded"

    def _state(self, key: str, pending: str) -> str:
        self._reads[key] = self._reads.get(key, 0) + 1
        return self._outcome.get(key, "Succeeded") if self._reads[key] > self.reads_to_finish else pending


class FakeOnlineEndpoints(_Progressing):
    def __init__(
        self, scoring_uri: str = "http://127.0.0.1:9/score", key: str = "test-key", reads_to_finish: int = 1
    ) -> None:
        super().__init__(reads_to_finish)
        self.scoring_uri, self.key = scoring_uri, key
        self.endpoints: dict[str, ManagedOnlineEndpoint] = {}
        self.calls: list[tuple[str, str]] = []
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()

    def begin_create_or_update(self, endpoint: ManagedOnlineEndpoint, *, local: bool = False) -> FakePoller:
        with self._lock:
            name = endpoint.name
            if name in self.endpoints:
                self.calls.append(("update", name))
                self._pending[name] = "Updating"
                self.endpoints[name].traffic = dict(endpoint.traffic or {})
            else:
                self.calls.append(("create", name))
                self._pending[name] = "Creating"
                self.endpoints[name] = ManagedOnlineEndpoint(
                    name=name,
                    auth_mode=endpoint.auth_mode,
                    description=endpoint.description,
                    tags=dict(endpoint.tags or {}),
                    traffic={},
                    properties={"createdAt": "2026-11-22T07:00:00.000000+0000"},
                    scoring_uri=self.scoring_uri,
                    provisioning_state="Creating",
                )
            self._started(name)
            return FakePoller(lambda: self.endpoints[name].provisioning_state if name in self.endpoints else "Deleted")

    def get(self, name: str, *, local: bool = False) -> ManagedOnlineEndpoint:
        with self._lock:
            if name not in self.endpoints:
                raise not_found(f"endpoint {name}")
            endpoint = self.endpoints[name]
            endpoint._provisioning_state = self._state(name, self._pending.get(name, "Creating"))
            return endpoint

    def list(self) -> list[ManagedOnlineEndpoint]:
        return list(self.endpoints.values())

    def get_keys(self, name: str) -> EndpointAuthKeys:
        self.get(name)
        return EndpointAuthKeys(primary_key=self.key, secondary_key=self.key + "-2")

    def begin_delete(self, name: str | None = None, *, local: bool = False) -> FakePoller:
        with self._lock:
            if name not in self.endpoints:
                raise not_found(f"endpoint {name}")
            self.calls.append(("delete", name))
            del self.endpoints[name]
            return FakePoller(lambda: "Succeeded")


class FakeOnlineDeployments(_Progressing):
    def __init__(self, reads_to_finish: int = 1) -> None:
        super().__init__(reads_to_finish)
        self.deployments: dict[tuple[str, str], ManagedOnlineDeployment] = {}
        self.calls: list[tuple[str, str, str]] = []

    def begin_create_or_update(self, deployment: ManagedOnlineDeployment, **kwargs: Any) -> FakePoller:
        key = (deployment.endpoint_name, deployment.name)
        self.calls.append(("create", *key))
        self.deployments[key] = deployment
        self._started(f"{key[0]}/{key[1]}")
        return FakePoller(lambda: deployment.provisioning_state or "Creating")

    def get(self, name: str, endpoint_name: str, *, local: bool = False) -> ManagedOnlineDeployment:
        if (endpoint_name, name) not in self.deployments:
            raise not_found(f"deployment {endpoint_name}/{name}")
        deployment = self.deployments[(endpoint_name, name)]
        deployment._provisioning_state = self._state(f"{endpoint_name}/{name}", "Creating")
        return deployment


class FakeWorkspaceModels:
    """The workspace's model registry: get by name and version, create_or_update records every call."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, str], Model] = {}
        self.created: list[Model] = []
        self._lock = threading.Lock()

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        if (name, version) not in self.models:
            raise not_found(f"model {name}:{version}")
        return self.models[(name, version)]

    def create_or_update(self, model: Model) -> Model:
        with self._lock:
            if (model.name, model.version) in self.models:
                raise ResourceExistsError(message=f"model {model.name}:{model.version} exists")
            stored = Model(
                name=model.name,
                version=model.version,
                path=model.path,
                type=model.type,
                tags=dict(model.tags or {}),
                description=model.description,
                id=f"{WORKSPACE_ARM}/models/{model.name}/versions/{model.version}",
            )
            self.created.append(stored)
            self.models[(model.name, model.version)] = stored
            return stored


class FakeJobs:
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
    def __init__(self, clusters: list[AmlCompute] | None = None, sizes: list[VmSize] | None = None) -> None:
        self.workspaces = FakeWorkspaces()
        self.compute = FakeCompute(clusters or [], SIZES if sizes is None else sizes)
        self.jobs = FakeJobs()
        self.models = FakeWorkspaceModels()
        self.online_endpoints = FakeOnlineEndpoints()
        self.online_deployments = FakeOnlineDeployments()
