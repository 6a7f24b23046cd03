"""Fakes of the MLClient operations chatft calls, at the network boundary only.

Every call returns the SDK's own entity types (Model, AmlCompute, VmSize, the component loaded
from our YAML fixture, the PipelineJob that was submitted), and every call is recorded.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from azure.ai.ml import load_component
from azure.ai.ml.entities import AmlCompute, Model, VmSize
from azure.core.exceptions import ResourceNotFoundError

FIXTURE = Path(__file__).parent / "fixtures" / "chat_completion_pipeline.yaml"

PHI3_TAGS = {
    # As the registry returns them: Python-literal strings.
    "finetune_compute_allow_list": "['Standard_NC24ads_A100_v4', 'Standard_NC48ads_A100_v4', 'Standard_NC96ads_A100_v4', 'Standard_ND96asr_v4', 'Standard_ND96amsr_A100_v4']",
    "model_specific_defaults": "{'apply_deepspeed': 'true', 'deepspeed_stage': 2, 'apply_lora': 'true', 'apply_ort': 'false', 'precision': 16, 'ignore_mismatched_sizes': 'false', 'num_train_epochs': 1, 'per_device_train_batch_size': 1, 'per_device_eval_batch_size': 1, 'gradient_accumulation_steps': 1, 'learning_rate': 5e-06, 'learning_rate_min': 5e-07, 'learning_rate_max': 5e-05, 'lr_scheduler_type': 'cosine', 'logging_strategy': 'steps', 'logging_steps': 10, 'save_total_limit': 1}",
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


class FakeModels:
    def __init__(self, models: list[Model]) -> None:
        self._models = {m.name: m for m in models}
        self.calls: list[tuple[str, str | None]] = []

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        self.calls.append((name, label))
        if name not in self._models:
            raise not_found(f"model {name}")
        return self._models[name]


class FakeComponents:
    def __init__(self, path: Path = FIXTURE) -> None:
        self._component = load_component(source=str(path))
        self.calls: list[tuple[str, str | None]] = []

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        self.calls.append((name, label))
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
            self._jobs[job.name] = job
            return job


class FakeRegistryClient:
    def __init__(self, models: list[Model] | None = None, component_path: Path = FIXTURE) -> None:
        self.models = FakeModels(models if models is not None else [model()])
        self.components = FakeComponents(component_path)


class FakeWorkspaceClient:
    def __init__(self, clusters: list[AmlCompute] | None = None, sizes: list[VmSize] | None = None) -> None:
        self.compute = FakeCompute(clusters or [], SIZES if sizes is None else sizes)
        self.jobs = FakeJobs()
