"""Azure ML implementation of the Workspace protocol: the notebook's steps, automated.

MLClient objects are created lazily and cached per process; `MLClient(credential,
registry_name=...)` calls the network in its constructor, so it is never built at import time
or before it is needed. Tests pass fakes of the MLClient operations that return real entities.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any, NamedTuple

from shared.azure.azureml.errors import is_missing, is_transient
from shared.azure.azureml.lro import (
    start_deployment_put,
    start_endpoint_delete,
    start_endpoint_put,
    start_endpoint_tags_patch,
    start_job_cancel,
)
from shared.azure.azureml.pipeline import build_finetune_pipeline, component_input_types
from shared.azure.azureml.tracking import MlflowRest, read_training_metrics, rest_bases
from shared.domain.finetune.choices import METADATA
from shared.domain.finetune.choices import label as choice_label
from shared.domain.finetune.compute import SERVERLESS, ComputePlan, check_cluster_state, check_vm_size, gpus_for
from shared.domain.finetune.errors import PreflightError
from shared.domain.finetune.model_check import MODEL_SETTING, check_model
from shared.domain.finetune.model_input import model_input
from shared.domain.finetune.model_metadata import FACT_TAGS, model_tags
from shared.domain.finetune.params import merge_parameters, parse_python_literal
from shared.domain.naming import display_name
from shared.domain.run_events import outcome_of_status
from shared.domain.tags import endpoint_tags
from shared.domain.training import TrainingMetrics
from shared.domain.workspace import (
    CREATED_AT_FORMAT,
    DeploymentInfo,
    EndpointInfo,
    FinetuneRequest,
    JobInfo,
    JobLog,
    RegisteredModel,
    SubmittedJob,
)
from shared.logs import log_step
from shared.settings import Settings

COMPONENT = "chat_completion_pipeline"


class Preflight(NamedTuple):
    model: Any
    tags: dict[str, str]
    warnings: list[str]
    compute: ComputePlan
    component: Any


def _default_credential() -> Any:
    from shared.azure.identity import credential

    return credential()


class AzureMLWorkspace:
    def __init__(
        self,
        settings: Settings,
        *,
        workspace_client: Any = None,
        registry_client: Any = None,
        credential_factory: Callable[[], Any] = _default_credential,
        today: Callable[[], date] = lambda: datetime.now(timezone.utc).date(),
        tracking_transport: Any = None,
    ) -> None:
        self._settings = settings
        self._tracking_client: MlflowRest | None = None
        self._tracking_transport = tracking_transport
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

    def _foundation_model(self, choice: str = "") -> Any:
        """The registry's latest version of FINETUNE_MODEL, or of the upload's own choice (named as such)."""
        name = choice or self._settings.finetune_model
        setting = METADATA["model"] if choice else MODEL_SETTING
        try:
            return self.registry.models.get(name, label="latest")
        except Exception as exc:
            if not _missing(exc):
                raise
            what = "choose" if choice else f"set {MODEL_SETTING} to"
            raise PreflightError(
                f"model {name} has no active version in registry {self._settings.aml_registry} "
                f"({exc}); {what} a model the registry lists for chat-completion fine-tuning",
                setting,
            ) from exc

    def _pipeline_component(self) -> Any:
        try:
            return self.registry.components.get(name=COMPONENT, label="latest")
        except Exception as exc:
            if not _missing(exc):
                raise
            raise PreflightError(
                f"component {COMPONENT} was not found in registry {self._settings.aml_registry} ({exc}); "
                "AML_REGISTRY must name the registry that publishes it (azureml)",
                "AML_REGISTRY",
            ) from exc

    def _compute_plan(self, model_tags: dict[str, str], model_choice: str = "") -> ComputePlan:
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
            check_cluster_state(cluster.name, _text(cluster.provisioning_state))
            size, setting, target = cluster.size, "FINETUNE_COMPUTE", cluster.name
        try:
            check_vm_size(size, model_tags, setting=setting)
        except PreflightError as exc:
            if not model_choice:
                raise
            raise PreflightError(str(exc), METADATA["model"]) from exc  # the upload's model did not allow it
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
        request.choices.check()
        model, tags, warnings, compute, component = self.preflight(request.choices.model)
        try:
            model_defaults = parse_python_literal(tags.get("model_specific_defaults"), "model_specific_defaults", dict)
        except ValueError as exc:
            warnings.append(f"ignored the model's model_specific_defaults tag: {exc}")
            model_defaults = {}
        try:
            merged = merge_parameters(
                component_input_types(component), model_defaults, s.finetune_overrides, request.choices
            )
        except ValueError as exc:
            raise PreflightError(str(exc), getattr(exc, "setting", "FINETUNE_OVERRIDES")) from exc
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
        tags = {**request.tags, "chatft_base_model": model.id}  # lineage for the registered model
        pipeline = build_finetune_pipeline(
            component,
            model_id=model.id,
            model_input=model_input(model.name, getattr(model, "type", None), set(component.inputs)),
            data_uris=request.data_uris,
            compute=compute,
            parameters=merged.values,
            display_name=name,
            job_name=request.job_name,
            experiment_name=s.experiment_name,
            tags=tags,
        )
        created = self.workspace.jobs.create_or_update(pipeline, experiment_name=s.experiment_name, tags=tags)
        result.studio_url = getattr(created, "studio_url", None)
        return result

    # --- what `chatft doctor` asks: the same preflight as a submission, quota, the datastore ---

    def preflight(self, model_choice: str = "") -> Preflight:
        """What a submission checks before it submits; raises PreflightError naming the setting to change (or the
        upload's metadata key, for a model the upload chose: its archive, retirement and compute allow list)."""
        setting = METADATA["model"] if model_choice else MODEL_SETTING
        with _chosen_model(model_choice):
            model = self._foundation_model(model_choice)
            tags = self._model_tags(model)
            warnings = check_model(model.name, tags, getattr(model, "stage", None), self._today(), setting=setting)
            compute = self._compute_plan(tags, model_choice)
        component = self._pipeline_component()
        with _chosen_model(model_choice):
            model_input(model.name, getattr(model, "type", None), set(component.inputs), setting=setting)
        return Preflight(model, tags, warnings, compute, component)

    def quota_for(self, vm_size: str) -> tuple[str, int, int] | None:
        """(VM family, cores one node needs, cores free in the region's family quota), or None if
        the service does not report the size or its family."""
        sizes = {v.name.lower(): v for v in self.workspace.compute.list_sizes()}
        size = sizes.get(vm_size.lower())
        if size is None or not size.family:
            return None
        cores = int(_field(size, "v_cp_us", "vCPUs") or 0)
        for usage in self.workspace.compute.list_usage():
            family = _field(usage.name, "value") if usage.name is not None else None
            if (family or "").lower() == size.family.lower():
                used = _field(usage, "current_value", "currentValue") or 0
                return size.family, cores, int((usage.limit or 0) - used)
        return None

    def datastore_target(self, name: str) -> tuple[str, str, str] | None:
        """(storage account, container, credential type) of a blob datastore; None if it does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            store = self.workspace.datastores.get(name)
        except ResourceNotFoundError:
            return None
        credential = type(getattr(store, "credentials", None)).__name__
        return getattr(store, "account_name", ""), getattr(store, "container_name", ""), credential

    # --- after the job: model, endpoint, deployment (long-running operations are only started) ---

    def job_info(self, name: str) -> JobInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            job = self.workspace.jobs.get(name)
        except ResourceNotFoundError:
            return None
        return JobInfo(
            name=job.name,
            status=_text(job.status),
            studio_url=getattr(job, "studio_url", None),
            tags={str(k).lower(): str(v) for k, v in (job.tags or {}).items()},
        )

    def begin_cancel_job(self, name: str) -> str:
        """`jobs.begin_cancel` (POST .../jobs/{name}/cancel), started without a poller (lro.start_job_cancel). A job already ended is not
        asked: the service refuses to cancel it with an HttpResponseError (azure-ai-ml's own test helper
        `cancel_job`, sdk/ml/azure-ai-ml/tests/test_utilities/utils.py, catches exactly that), so a refusal is
        read again: a job that ended meanwhile is its final status, anything else is raised."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        info = self.job_info(name)
        if info is None:
            raise ResourceNotFoundError(f"job {name} does not exist in workspace {self._settings.aml_workspace}")
        if outcome_of_status(info.status) is not None:
            return info.status
        try:
            start_job_cancel(self.workspace, name)
        except HttpResponseError as exc:
            if is_transient(exc):
                raise
            again = self.job_info(name)
            if again is not None and outcome_of_status(again.status) is not None:
                return again.status
            raise
        return ""

    def job_log(self, name: str) -> JobLog | None:
        """The pipeline's and each step's log so far, from the run history, as `az ml job stream` reads them
        (shared.azure.azureml.run_logs)."""
        from shared.azure.azureml.run_logs import read_job_log

        return read_job_log(self.workspace.jobs, name)

    @property
    def tracking(self) -> MlflowRest:
        """The MLflow REST API on the workspace's tracking URI (v2.0 route first), as the app's identity (tracking.py)."""
        if self._tracking_client is None:
            ws = self.workspace.workspaces.get(self._settings.aml_workspace)
            bases = rest_bases(ws.mlflow_tracking_uri)
            self._tracking_client = MlflowRest(bases, self._credential, transport=self._tracking_transport)
        return self._tracking_client

    def training_metrics(self, job_name: str) -> TrainingMetrics:
        return read_training_metrics(self.tracking, job_name)

    def foundation_model_tags(self, name: str) -> dict[str, str]:
        return self._model_tags(self.registry.models.get(name, label="latest"))

    def _model_tags(self, model: Any) -> dict[str, str]:
        """The model's tags with the fine-tuning facts of its system_metadata merged in (model_metadata.py)."""
        tags = dict(model.tags or {})
        if all(key in tags for key in FACT_TAGS):
            return model_tags(tags, None)
        return model_tags(tags, self._system_metadata(model))

    def _system_metadata(self, model: Any) -> Any:
        """`Model._system_metadata`, else the registry's raw answer. azure-ai-ml reads system_metadata only
        with `hasattr(rest_model_version, "system_metadata")` (entities/_assets/_artifacts/model.py), and the
        registry's ArmModelVersion properties (_restclient/arm_ml_service/models/_models.py
        ModelVersionProperties) declare no such field, so a registry read drops it; the hybrid model still
        holds the response body, which `models._get` (operations/_model_operations.py, private) returns."""
        found = getattr(model, "_system_metadata", None)
        if found:
            return found
        raw_get = getattr(self.registry.models, "_get", None)
        if raw_get is None or not getattr(model, "version", None):
            return None
        try:
            raw = raw_get(model.name, str(model.version))
            properties = raw.get("properties") if hasattr(raw, "get") else None
            if hasattr(properties, "get"):
                return properties.get("system_metadata") or properties.get("systemMetadata")
        except Exception as exc:  # only a fallback: the tags still decide, and the checks say what is missing
            log_step("azureml.system_metadata_unreadable", model=model.name, error=f"{type(exc).__name__}: {exc}")
        return None

    def register_model(
        self, *, job_name: str, name: str, version: str, description: str, tags: dict[str, str]
    ) -> RegisteredModel:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        existing = self._model_version(name, version)
        if existing is not None:
            return RegisteredModel(existing.id, existing.name, existing.version, created=False)
        model = Model(
            path=f"azureml://jobs/{job_name}/outputs/trained_model",
            type=AssetTypes.MLFLOW_MODEL,
            name=name,
            version=version,
            description=description,
            tags=tags,
        )
        try:
            created = self.workspace.models.create_or_update(model)
        except (ResourceExistsError, HttpResponseError) as exc:  # a concurrent duplicate event won the race
            if isinstance(exc, HttpResponseError) and exc.status_code != 409:
                raise
            existing = self._model_version(name, version)
            if existing is None:
                raise
            return RegisteredModel(existing.id, existing.name, existing.version, created=False)
        return RegisteredModel(created.id, created.name, created.version, created=True)

    def _model_version(self, name: str, version: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.workspace.models.get(name, version=version)
        except ResourceNotFoundError:
            return None

    def get_endpoint(self, name: str) -> EndpointInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            endpoint = self.workspace.online_endpoints.get(name)
        except ResourceNotFoundError:
            return None
        return _endpoint_info(endpoint)

    def list_endpoints(self) -> list[EndpointInfo]:
        return [_endpoint_info(e) for e in self.workspace.online_endpoints.list()]

    def begin_create_endpoint(self, *, name: str, description: str, tags: dict[str, str]) -> None:
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        endpoint = ManagedOnlineEndpoint(name=name, auth_mode="key", description=description, tags=endpoint_tags(tags))
        start_endpoint_put(self.workspace, endpoint, self.location())

    def set_endpoint_traffic(self, name: str, traffic: dict[str, int]) -> None:
        endpoint = self.workspace.online_endpoints.get(name)
        endpoint.traffic = dict(traffic)
        start_endpoint_put(self.workspace, endpoint, self.location())

    def set_endpoint_tags(self, name: str, tags: dict[str, str]) -> None:
        """A PATCH of the tags alone (see lro.start_endpoint_tags_patch): traffic and deployments are untouched.
        Like at creation, chatft_model goes in its short form (tags.endpoint_tags: Azure's 256-character limit)."""
        start_endpoint_tags_patch(self.workspace, name, endpoint_tags(tags))

    def get_deployment(self, endpoint: str, name: str) -> DeploymentInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            deployment = self.workspace.online_deployments.get(name=name, endpoint_name=endpoint)
        except ResourceNotFoundError:
            return None
        return DeploymentInfo(deployment.name, _text(deployment.provisioning_state))

    def begin_create_deployment(self, *, endpoint: str, name: str, model_id: str, instance_type: str) -> None:
        from azure.ai.ml.entities import ManagedOnlineDeployment, OnlineRequestSettings, ProbeSettings

        deployment = ManagedOnlineDeployment(
            name=name,
            endpoint_name=endpoint,
            model=model_id,
            instance_type=instance_type,
            instance_count=1,
            liveness_probe=ProbeSettings(initial_delay=600),
            request_settings=OnlineRequestSettings(request_timeout_ms=90000),
        )
        start_deployment_put(self.workspace, deployment, self.location())

    def endpoint_key(self, name: str) -> str:
        """The scoring request's bearer, as the endpoint's auth mode has it: `get_keys` gives an EndpointAuthKeys
        (key: its primary key), an EndpointAuthToken (aml_token) or an EndpointAadToken (aad_token: a token for
        https://ml.azure.com/.default from this client's credential), azure/ai/ml/operations/
        _online_endpoint_operations.py `_get_online_credentials`."""
        keys = self.workspace.online_endpoints.get_keys(name)
        return getattr(keys, "primary_key", None) or keys.access_token

    @functools.cache  # noqa: B019 - one workspace object per process
    def location(self) -> str:
        """The workspace's Azure region (Azure Monitor's metrics endpoint is regional)."""
        return self.workspace.workspaces.get(self._settings.aml_workspace).location

    def begin_delete_endpoint(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            start_endpoint_delete(self.workspace, name)


def _text(value: Any) -> str:
    """A status as the service spells it. The SDK hands states and statuses over as the generated str-Enums
    (JobStatus, EndpointProvisioningState, ...; azure/ai/ml/_restclient/arm_ml_service/models/_enums.py), whose
    str() is "JobStatus.COMPLETED", not "Completed"."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _field(obj: Any, *names: str) -> Any:
    """An attribute of an SDK entity, under its documented name or the wire name. VmSize and Usage copy the
    REST model's `as_dict()` into their __dict__ (azure/ai/ml/entities/_compute/_vm_size.py and _usage.py,
    `_from_rest_object`), so the real SDK gives `vCPUs`, `currentValue` and `name` as a dict, not the
    documented `v_cp_us`, `current_value` and UsageName."""
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


@contextlib.contextmanager
def _chosen_model(choice: str):
    """A model the upload chose fails preflight as its metadata key and option, not as FINETUNE_MODEL."""
    try:
        yield
    except PreflightError as exc:
        if not choice:
            raise
        said = str(exc).removesuffix(f" (setting: {exc.setting})")
        raise PreflightError(f"{choice_label('model')} {choice}: {said}", METADATA["model"]) from exc


def _missing(exc: BaseException) -> bool:
    """is_missing, plus a bare 404: a registry lookup by label lists versions through
    `list_registry_assets` (azure/ai/ml/_utils/_registry_utils.py), which calls `raise_for_status()`, so a 404
    there is an HttpResponseError, not a ResourceNotFoundError."""
    from azure.core.exceptions import HttpResponseError

    return is_missing(exc) or (isinstance(exc, HttpResponseError) and exc.status_code == 404)


def parse_created_at(value: Any) -> datetime | None:
    """`endpoint.properties["createdAt"]` as the SDK puts it there; None if absent or unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not value:
        return None
    text = str(value)
    for parse in (lambda t: datetime.strptime(t, CREATED_AT_FORMAT), datetime.fromisoformat):
        try:
            parsed = parse(text)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def _endpoint_info(endpoint: Any) -> EndpointInfo:
    return EndpointInfo(
        name=endpoint.name,
        provisioning_state=_text(endpoint.provisioning_state),
        traffic=dict(endpoint.traffic or {}),
        scoring_uri=endpoint.scoring_uri,
        tags=dict(endpoint.tags or {}),
        created_at=parse_created_at((endpoint.properties or {}).get("createdAt")),
    )
