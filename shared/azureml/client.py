"""Azure ML implementation of the Workspace protocol: the notebook's steps, automated.

MLClient objects are created lazily and cached per process; `MLClient(credential,
registry_name=...)` calls the network in its constructor, so it is never built at import time
or before it is needed. Tests pass fakes of the MLClient operations that return real entities.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any

from shared.azureml.pipeline import build_finetune_pipeline, component_input_types
from shared.azureml.workspace import FinetuneRequest, SubmittedJob
from shared.finetune.compute import SERVERLESS, ComputePlan, check_cluster_state, check_vm_size, gpus_for
from shared.finetune.errors import PreflightError
from shared.finetune.model_check import MODEL_SETTING, check_model
from shared.finetune.params import merge_parameters, parse_python_literal
from shared.logs import log_step
from shared.naming import display_name
from shared.settings import Settings

COMPONENT = "chat_completion_pipeline"


def _default_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class AzureMLWorkspace:
    def __init__(
        self,
        settings: Settings,
        *,
        workspace_client: Any = None,
        registry_client: Any = None,
        credential_factory: Callable[[], Any] = _default_credential,
        today: Callable[[], date] = lambda: datetime.now(timezone.utc).date(),
    ) -> None:
        self._settings = settings
        self._workspace_client = workspace_client
        self._registry_client = registry_client
        self._credential_factory = credential_factory
        self._today = today

    @functools.cached_property
    def _credential(self) -> Any:
        return self._credential_factory()

    @property
    def workspace(self) -> Any:
        if self._workspace_client is None:
            from azure.ai.ml import MLClient

            s = self._settings
            self._workspace_client = MLClient(
                self._credential, s.aml_subscription_id, s.aml_resource_group, s.aml_workspace
            )
        return self._workspace_client

    @property
    def registry(self) -> Any:
        if self._registry_client is None:
            from azure.ai.ml import MLClient

            self._registry_client = MLClient(self._credential, registry_name=self._settings.aml_registry)
        return self._registry_client

    def _foundation_model(self) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        name = self._settings.finetune_model
        try:
            return self.registry.models.get(name, label="latest")
        except ResourceNotFoundError as exc:
            raise PreflightError(
                f"model {name} was not found in registry {self._settings.aml_registry}", MODEL_SETTING
            ) from exc

    def _compute_plan(self, model_tags: dict[str, str]) -> ComputePlan:
        from azure.core.exceptions import ResourceNotFoundError

        s = self._settings
        if s.finetune_compute.lower() == SERVERLESS:
            size, setting, target = s.finetune_instance_type, "FINETUNE_INSTANCE_TYPE", SERVERLESS
        else:
            try:
                cluster = self.workspace.compute.get(s.finetune_compute)
            except ResourceNotFoundError as exc:
                raise PreflightError(
                    f"compute cluster {s.finetune_compute} does not exist in workspace {s.aml_workspace}; "
                    "create it with an allowed GPU size, or use serverless",
                    "FINETUNE_COMPUTE",
                ) from exc
            check_cluster_state(cluster.name, cluster.provisioning_state)
            size, setting, target = cluster.size, "FINETUNE_COMPUTE", cluster.name
        check_vm_size(size, model_tags, setting=setting)
        gpus = gpus_for(size, ((v.name, v.gpus) for v in self.workspace.compute.list_sizes()), setting=setting)
        return ComputePlan(target=target, vm_size=size, gpus_per_node=gpus)

    def _existing_job(self, name: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.workspace.jobs.get(name)
        except ResourceNotFoundError:
            return None

    def submit_finetune(self, request: FinetuneRequest) -> SubmittedJob:
        s = self._settings
        model = self._foundation_model()
        tags = dict(model.tags or {})
        warnings = check_model(model.name, tags, getattr(model, "stage", None), self._today())
        compute = self._compute_plan(tags)
        component = self.registry.components.get(name=COMPONENT, label="latest")
        try:
            model_defaults = parse_python_literal(tags.get("model_specific_defaults"), "model_specific_defaults", dict)
        except ValueError as exc:
            warnings.append(f"ignored the model's model_specific_defaults tag: {exc}")
            model_defaults = {}
        try:
            merged = merge_parameters(component_input_types(component), model_defaults, s.finetune_overrides)
        except ValueError as exc:
            raise PreflightError(str(exc), "FINETUNE_OVERRIDES") from exc
        for key, source, reason in merged.dropped:
            log_step("submit.parameter_dropped", cid=request.cid, key=key, source=source, reason=reason)
        name = display_name(model.name, merged.values, compute.gpus_per_node)
        result = SubmittedJob(
            name=request.job_name,
            display_name=name,
            experiment_name=s.experiment_name,
            parameters=merged.values,
            dropped_parameters=merged.dropped,
            warnings=warnings,
            model_id=model.id,
            compute=compute.target,
            gpus_per_node=compute.gpus_per_node,
        )
        existing = self._existing_job(request.job_name)
        if existing is not None:  # a crashed or timed-out attempt already submitted it
            result.already_existed, result.studio_url = True, getattr(existing, "studio_url", None)
            return result
        pipeline = build_finetune_pipeline(
            component,
            model_id=model.id,
            data_uris=request.data_uris,
            compute=compute,
            parameters=merged.values,
            display_name=name,
            job_name=request.job_name,
            experiment_name=s.experiment_name,
            tags=request.tags,
        )
        created = self.workspace.jobs.create_or_update(pipeline, experiment_name=s.experiment_name, tags=request.tags)
        result.studio_url = getattr(created, "studio_url", None)
        return result
