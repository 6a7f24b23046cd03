"""The one place where settings are read: typed values, defaults, and one error naming every problem.

Cheap to import (no SDKs), because the function blueprints read it at index time.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from shared.domain.chatdata.fractions import SplitFractions
from shared.domain.chatdata.options import ValidationOptions
from shared.domain.ncrontab import check_ncrontab

STORAGE_CONNECTION = "CHATFT_STORAGE"
"""Name of the connection setting the blob trigger and our storage clients use.

Locally it holds a connection string (`UseDevelopmentStorage=true`); in Azure, use identity-based
settings instead: `CHATFT_STORAGE__blobServiceUri` and `CHATFT_STORAGE__queueServiceUri`.
"""

TRIGGER_SOURCES = ("LogsAndContainerScan", "EventGrid")
DEFAULT_TRIGGER_SOURCE = "EventGrid"
"""Deployed default: Flex Consumption supports only the Event Grid blob trigger source. Local
settings choose polling (LogsAndContainerScan), which needs no subscription."""
ML_BACKENDS = ("azure", "local", "none")
"""Where fine-tuning runs: Azure ML, the embedded local backend, or nowhere (validate and prepare only)."""
LOCAL_TRAINERS = ("retrieval", "lora")
"""The local backend's fine-tuning jobs: the retrieval stand-in (default, seconds) and LoRA (shared/local/lora/)."""
LOCAL_WORKSPACE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/chatft-local"
    "/providers/Microsoft.MachineLearningServices/workspaces/chatft-local"
)


class SettingsError(ValueError):
    """Raised once, listing every missing or invalid setting by name."""


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _shown(text: str) -> str:
    """A value in an error message: quoted, and short whatever was set."""
    quoted = repr(text)
    return quoted if len(quoted) <= 40 else quoted[:37] + "..."


def _whole(minimum: int, maximum: int) -> Callable[[str], int]:
    """A whole number from `minimum` to `maximum`: every count, size and duration has a finite, sane range
    (docs/settings.md says why for each one)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"must be a whole number from {minimum} to {maximum}, got {_shown(text)}") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"must be a whole number from {minimum} to {maximum}, got {_shown(str(value))}")
        return value

    return parse


def _number(maximum: float, what: str) -> Callable[[str], float]:
    """A finite number above 0 and at most `maximum` (`what` says the unit): timedelta() of it never overflows."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 < value <= maximum):
            raise ValueError(f"must be a number of {what} above 0 and at most {maximum:g}, got {_shown(text)}")
        return value

    return parse


def _split_fractions(text: str) -> SplitFractions:
    fractions = SplitFractions.parse(text)
    parts = (fractions.train, fractions.validation, fractions.test)
    if not all(math.isfinite(p) for p in parts):
        raise ValueError(f"must be three finite fractions 'train,validation,test', got {_shown(text)}")
    return fractions


def _folder(text: str) -> str:
    """A folder path that is, or can become, a folder: nothing along it may be a file (e.g. /dev/null)."""
    path = text.strip()
    if not path:
        raise ValueError("must be a folder path")
    here = os.path.abspath(path)
    while not os.path.lexists(here):
        here = os.path.dirname(here)
    if not os.path.isdir(here):
        raise ValueError(f"{_shown(path)} cannot be a folder: {here} is not a folder")
    return path


def _container(text: str) -> str:
    name = text.strip()
    ok = 3 <= len(name) <= 63 and name.replace("-", "").isalnum() and name == name.lower() and "--" not in name
    if not ok or name[0] == "-" or name[-1] == "-":
        raise ValueError(f"{name!r} is not a valid blob container name (3-63 of a-z, 0-9, '-')")
    return name


def _trigger_source(text: str) -> str:
    for source in TRIGGER_SOURCES:
        if text.strip().lower() == source.lower():
            return source
    raise ValueError(f"must be one of {', '.join(TRIGGER_SOURCES)}, got {text!r}")


@dataclass(frozen=True)
class _Spec:
    env: str
    parse: Callable[[str], Any]
    default: str | None


def _name(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def parse(text: str) -> str:
        value = text.strip()
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {text!r}")
        return value

    return parse


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, got {type(value).__name__}")
    return value


_SPECS: dict[str, _Spec] = {
    "upload_container": _Spec("UPLOAD_CONTAINER", _container, "chat-uploads"),
    "prepared_container": _Spec("PREPARED_CONTAINER", _container, "chat-prepared"),
    "upload_trigger_source": _Spec("UPLOAD_TRIGGER_SOURCE", _trigger_source, DEFAULT_TRIGGER_SOURCE),
    "strict": _Spec("VALIDATION_STRICT", _bool, "false"),
    "drop_invalid": _Spec("VALIDATION_DROP_INVALID", _bool, "false"),
    "max_seq_tokens": _Spec("MAX_SEQ_TOKENS", _whole(1, 1 << 20), "4096"),
    "min_train_rows": _Spec("MIN_TRAIN_ROWS", _whole(1, 10_000_000), "10"),
    "split_fractions": _Spec("SPLIT_FRACTIONS", _split_fractions, "0.9,0.05,0.05"),
    "max_line_bytes": _Spec("MAX_LINE_BYTES", _whole(1, 64 << 20), str(1 << 20)),
    "examples_per_code": _Spec("REPORT_EXAMPLES_PER_CODE", _whole(1, 200), "20"),
    "duplicate_check_limit": _Spec("DUPLICATE_CHECK_LIMIT", _whole(1, 10_000_000), "100000"),
    "ml_backend": _Spec("ML_BACKEND", _choice(*ML_BACKENDS), "azure"),
    "aml_subscription_id": _Spec("AML_SUBSCRIPTION_ID", _name(r"[0-9a-fA-F-]{36}", "subscription id"), ""),
    "aml_resource_group": _Spec("AML_RESOURCE_GROUP", _name(r"[-\w.()]{1,90}", "resource group name"), ""),
    "aml_workspace": _Spec("AML_WORKSPACE", _name(r"[A-Za-z0-9][\w-]{2,32}", "workspace name"), ""),
    "aml_registry": _Spec("AML_REGISTRY", _name(r"[A-Za-z0-9][\w-]{1,32}", "registry name"), "azureml"),
    "aml_datastore": _Spec("AML_DATASTORE", _name(r"[a-z0-9_]{1,255}", "datastore name"), "chatft_prepared"),
    # Phi-4: the only model in Azure/azureml-assets whose spec lists chat-completion fine-tuning with no
    # fine-tuning retirement date (docs/deploy.md, "Choosing the foundation model").
    "finetune_model": _Spec("FINETUNE_MODEL", _name(r"[A-Za-z0-9][\w.-]{0,254}", "model name"), "Phi-4"),
    "finetune_compute": _Spec("FINETUNE_COMPUTE", _name(r"[A-Za-z][\w-]{1,31}", "compute name"), "serverless"),
    "finetune_instance_type": _Spec("FINETUNE_INSTANCE_TYPE", _name(r"\w+", "VM size"), "Standard_NC24ads_A100_v4"),
    "finetune_overrides": _Spec("FINETUNE_OVERRIDES", _json_object, "{}"),
    "experiment_name": _Spec(
        "EXPERIMENT_NAME", _name(r"[A-Za-z0-9][\w-]{0,254}", "experiment name"), "chatft-finetune"
    ),
    "ledger_table": _Spec("LEDGER_TABLE", _name(r"[A-Za-z][A-Za-z0-9]{2,62}", "table name"), "chatftledger"),
    "claim_timeout_seconds": _Spec("SUBMIT_CLAIM_TIMEOUT_SECONDS", _whole(60, 86_400), "900"),
    # "" (unset or empty): the registered model is <FINETUNE_MODEL>-<dataset>; an upload's chatft_suffix wins.
    "registered_model_suffix": _Spec(
        "REGISTERED_MODEL_SUFFIX", _name(r"[A-Za-z0-9][\w-]{0,63}", "model name suffix"), ""
    ),
    "deployment_name": _Spec(
        "DEPLOYMENT_NAME", _name(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]", "deployment name"), "demo"
    ),
    # "" (unset or empty): the cheapest of the model's recommended sizes (shared/domain/deploy/sku.py).
    "deploy_instance_type": _Spec("DEPLOY_INSTANCE_TYPE", _name(r"\w+", "VM size"), ""),
    "deploy_deadline_minutes": _Spec("DEPLOY_DEADLINE_MINUTES", _whole(10, 10_080), "120"),
    "smoke_timeout_seconds": _Spec("SMOKE_TIMEOUT_SECONDS", _whole(1, 600), "120"),
    "eval_samples": _Spec("EVAL_SAMPLES", _whole(1, 1000), "50"),
    # "" (unset or empty): no gate (shared/flows/evaluation.py).
    "eval_min_token_f1": _Spec("EVAL_MIN_TOKEN_F1", _number(1, "token F1"), ""),
    "deploy_max_eval_loss": _Spec("DEPLOY_MAX_EVAL_LOSS", _number(1_000_000, "loss"), ""),
    "reconcile_schedule": _Spec("DEPLOY_RECONCILE_SCHEDULE", check_ncrontab, "0 */2 * * * *"),
    "job_poll_quiet_minutes": _Spec("JOB_POLL_QUIET_MINUTES", _number(10_080, "minutes"), "15"),
    "janitor_schedule": _Spec("JANITOR_SCHEDULE", check_ncrontab, "0 */15 * * * *"),
    "janitor_idle_minutes": _Spec("JANITOR_IDLE_MINUTES", _number(86_400, "minutes"), "120"),
    "local_state_dir": _Spec("LOCAL_STATE_DIR", _folder, ".chatft"),
    # The local backend's fine-tuning job: "retrieval" (the fast stand-in) or "lora" (real LoRA training, needs
    # `pip install .[train]`), and for lora the base model: a Hugging Face model folder, a Hub id, or "tiny".
    "local_trainer": _Spec("LOCAL_TRAINER", _choice(*LOCAL_TRAINERS), "retrieval"),
    "local_base_model": _Spec("LOCAL_BASE_MODEL", _name(r"\S(.*\S)?", "model folder, Hub id or tiny"), "tiny"),
    "local_workspace_id": _Spec(
        "LOCAL_WORKSPACE_ID",
        _name(
            r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/workspaces/[^/]+",
            "workspace resource id",
        ),
        LOCAL_WORKSPACE_ID,
    ),
    "local_event_webhook": _Spec(
        "LOCAL_EVENT_WEBHOOK",
        _name(r"https?://\S+", "URL"),
        "http://localhost:7071/runtime/webhooks/EventGrid?functionName=job_events",
    ),
    "janitor_dry_run": _Spec("JANITOR_DRY_RUN", _bool, "false"),
    "janitor_max_deletes": _Spec("JANITOR_MAX_DELETES", _whole(1, 1000), "5"),
    "janitor_max_age_hours": _Spec("JANITOR_MAX_AGE_HOURS", _number(87_600, "hours"), ""),
    # "" (unset or empty): no lifecycle events are published (shared/flows/lifecycle_events.py).
    "events_topic_endpoint": _Spec("EVENTS_TOPIC_ENDPOINT", _name(r"https?://\S+", "URL"), ""),
    # "": EVENTS_TOPIC_ENDPOINT is a basic custom topic; a name: it is an Event Grid namespace, and this its topic
    # (the rule for namespace topic names: 3-50 letters, digits and hyphens).
    "events_namespace_topic": _Spec("EVENTS_NAMESPACE_TOPIC", _name(r"[A-Za-z0-9-]{3,50}", "namespace topic name"), ""),
    "gpu_hourly_price_usd": _Spec("GPU_HOURLY_PRICE_USD", _number(10_000, "US dollars"), ""),
    # The guards (docs/guards.md): a person would otherwise be the one to stop twenty files starting twenty jobs.
    "max_active_jobs": _Spec("MAX_ACTIVE_JOBS", _whole(1, 1000), "2"),
    "max_live_endpoints": _Spec("MAX_LIVE_ENDPOINTS", _whole(1, 1000), "2"),
    "deploy_evict_idle": _Spec("DEPLOY_EVICT_IDLE", _bool, "false"),
    "job_max_hours": _Spec("JOB_MAX_HOURS", _number(8_760, "hours"), "24"),
    # "" (unset or empty): no budget (shared/domain/spend.py).
    "monthly_budget_usd": _Spec("MONTHLY_BUDGET_USD", _number(10_000_000, "US dollars"), ""),
}


def _parse(names: list[str], env: Mapping[str, str] | None) -> tuple[dict[str, Any], list[str]]:
    """Parse the named settings; collect every problem instead of stopping at the first."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name in names:
        spec = _SPECS[name]
        raw = env.get(spec.env, spec.default)
        if raw is None:
            problems.append(f"{spec.env}: missing")
        elif raw == "" and spec.default == "":
            values[name] = ""
        else:
            try:
                values[name] = spec.parse(raw)
            except ValueError as exc:
                problems.append(f"{spec.env}: {exc}")
    return values, problems


_VALIDATION_FIELDS = {
    "strict": "strict",
    "drop_invalid": "drop_invalid",
    "max_seq_tokens": "max_seq_tokens",
    "min_train_rows": "min_train_rows",
    "split_fractions": "fractions",
    "max_line_bytes": "max_line_bytes",
    "examples_per_code": "examples_per_code",
    "duplicate_check_limit": "duplicate_check_limit",
}


def validation_options(env: Mapping[str, str] | None = None) -> ValidationOptions:
    """Only the validation settings (the CLI needs no Azure settings)."""
    values, problems = _parse(list(_VALIDATION_FIELDS), env)
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))
    return ValidationOptions(**{_VALIDATION_FIELDS[k]: v for k, v in values.items()})


# Settings only the fine-tuning submission needs: a problem with them fails the submission
# (recorded in the ledger and the report), not the whole ingest.
_SUBMISSION_FIELDS = (
    "aml_subscription_id",
    "aml_resource_group",
    "aml_workspace",
    "aml_registry",
    "aml_datastore",
    "finetune_model",
    "finetune_compute",
    "finetune_instance_type",
    "finetune_overrides",
    "experiment_name",
    "claim_timeout_seconds",
    "registered_model_suffix",
    "deployment_name",
    "deploy_instance_type",
    "deploy_deadline_minutes",
    "smoke_timeout_seconds",
    "eval_samples",
    "eval_min_token_f1",
    "deploy_max_eval_loss",
)

# Required only when ML_BACKEND=azure (empty defaults above).
_AZURE_REQUIRED = ("aml_subscription_id", "aml_resource_group", "aml_workspace")


@dataclass(frozen=True)
class Settings:
    upload_container: str
    prepared_container: str
    upload_trigger_source: str
    strict: bool
    drop_invalid: bool
    max_seq_tokens: int
    min_train_rows: int
    split_fractions: SplitFractions
    max_line_bytes: int
    examples_per_code: int
    duplicate_check_limit: int
    ml_backend: str
    aml_subscription_id: str
    aml_resource_group: str
    aml_workspace: str
    aml_registry: str
    aml_datastore: str
    finetune_model: str
    finetune_compute: str
    finetune_instance_type: str
    finetune_overrides: dict[str, Any]
    experiment_name: str
    ledger_table: str
    claim_timeout_seconds: int
    registered_model_suffix: str
    deployment_name: str
    deploy_instance_type: str
    """The deployment's VM size; "" (unset or empty): the cheapest the model recommends (domain/deploy/sku.py)."""
    deploy_deadline_minutes: int
    smoke_timeout_seconds: int
    eval_samples: int
    """Held-out conversations scored before an endpoint goes live (shared/flows/evaluation.py)."""
    eval_min_token_f1: float | str
    """Below this token F1 the endpoint is retired at once; "" (unset or empty): no gate."""
    deploy_max_eval_loss: float | str
    """Above this final eval_loss the model is registered but not deployed; "" (unset or empty): no gate."""
    reconcile_schedule: str
    job_poll_quiet_minutes: float
    janitor_schedule: str
    janitor_idle_minutes: float
    janitor_dry_run: bool
    janitor_max_deletes: int
    janitor_max_age_hours: float | str
    """Hard cap on a managed endpoint's age, whatever its traffic; "" (unset or empty): no cap."""
    gpu_hourly_price_usd: float | str
    """USD per GPU hour for the report's training cost estimate; "" (unset or empty): hours only."""
    max_active_jobs: int
    """GPU jobs running at once; more uploads wait `queued` in arrival order (shared/domain/job_queue.py)."""
    max_live_endpoints: int
    """Endpoints deploying or live at once; more registered models wait `deploy_queued`."""
    deploy_evict_idle: bool
    """At MAX_LIVE_ENDPOINTS, retire the least recently used endpoint (not kept, up JANITOR_IDLE_MINUTES) first."""
    job_max_hours: float
    """A job running longer is canceled (shared/flows/job_poll.py)."""
    monthly_budget_usd: float | str
    """At 100 % of it new jobs and deployments wait; "" (unset or empty): no budget."""
    local_state_dir: str
    local_trainer: str
    local_base_model: str
    local_workspace_id: str
    local_event_webhook: str
    events_topic_endpoint: str
    events_namespace_topic: str
    """The Event Grid custom topic lifecycle events go to ("": none); an http:// URL is a local sink."""
    submission_problems: tuple[str, ...] = ()
    """Invalid or missing settings that block fine-tuning submission (see from_env)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Raise SettingsError naming every bad setting the app cannot run without.

        Bad *submission* settings do not stop ingest: they are kept in `submission_problems`, so
        uploads are still validated and the report (and ledger) say which settings to fix.
        """
        names = [f.name for f in fields(cls) if f.name != "submission_problems"]
        values, problems = _parse([n for n in names if n not in _SUBMISSION_FIELDS], env)
        problems += storage_problems(os.environ if env is None else env)
        if values.get("prepared_container") and values.get("prepared_container") == values.get("upload_container"):
            problems.append(
                "PREPARED_CONTAINER: must differ from UPLOAD_CONTAINER, or the trigger fires on its own output"
            )
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        submission, submission_problems = _parse(list(_SUBMISSION_FIELDS), env)
        for name in _SUBMISSION_FIELDS:
            if name not in submission:  # keep the object complete; the problem is reported instead
                submission[name] = _SPECS[name].parse(_SPECS[name].default) if _SPECS[name].default else ""
        if values["ml_backend"] == "azure":
            for name in _AZURE_REQUIRED:
                if submission.get(name) == "" and not any(
                    p.startswith(_SPECS[name].env + ":") for p in submission_problems
                ):
                    submission_problems.append(f"{_SPECS[name].env}: missing (required when ML_BACKEND=azure)")
        return cls(**values, **submission, submission_problems=tuple(submission_problems))

    @property
    def workspace_resource_id(self) -> str:
        """The workspace whose events we accept: Azure ML's, or the configured local one."""
        if self.ml_backend == "local":
            return self.local_workspace_id
        return (
            f"/subscriptions/{self.aml_subscription_id}/resourceGroups/{self.aml_resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.aml_workspace}"
        )

    @property
    def janitor_max_age(self) -> timedelta | None:
        """JANITOR_MAX_AGE_HOURS as a timedelta, None when no cap is set."""
        return timedelta(hours=self.janitor_max_age_hours) if self.janitor_max_age_hours != "" else None

    def validation_options(self) -> ValidationOptions:
        return ValidationOptions(**{option: getattr(self, name) for name, option in _VALIDATION_FIELDS.items()})


def setting_names() -> list[str]:
    """Every setting the app reads (for docs and the sample settings test)."""
    return [STORAGE_CONNECTION, *(spec.env for spec in _SPECS.values())]


def storage_connection(
    env: Mapping[str, str] | None = None, service: str = "blob", connection: str = STORAGE_CONNECTION
) -> tuple[str, str] | None:
    """('connection_string', value) or ('account_url', value) for a connection setting's blob/queue/table service.

    In the order the Functions storage extensions read a connection (Azure/azure-sdk-for-net
    sdk/extensions/Microsoft.Azure.WebJobs.Extensions.Clients/src/Shared/StorageClientProvider.cs,
    `CreateClient` and `TryGetServiceUri`): the setting itself holds a connection string; else
    `<name>__accountName` gives https://<account>.<service>.core.windows.net; else `<name>__<service>ServiceUri`;
    else, for the blob service only, `<name>__serviceUri` (BlobServiceClient's own `serviceUri`; "If both versions
    are provided, the multi-service form is used" and "The URI can only designate the blob service": MicrosoftDocs
    azure-docs includes/functions-storage-blob-connections.md, "Identity-based connections").
    """
    env = os.environ if env is None else env
    if env.get(connection):
        return "connection_string", env[connection]
    if env.get(f"{connection}__accountName"):
        return "account_url", f"https://{env[f'{connection}__accountName']}.{service}.core.windows.net"
    suffixes = (f"__{service}ServiceUri", "__serviceUri") if service == "blob" else (f"__{service}ServiceUri",)
    for suffix in suffixes:
        if env.get(connection + suffix):
            return "account_url", env[connection + suffix]
    return None


_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?")
_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")


def storage_problems(env: Mapping[str, str]) -> list[str]:
    """CHATFT_STORAGE and its identity-based settings, checked as the storage SDKs will read them, so a bad one is
    named when the settings are read, not by the first upload. Never quotes the value (it may hold a key)."""
    problems: list[str] = []
    if env.get(STORAGE_CONNECTION):
        try:
            _connection_string(env[STORAGE_CONNECTION])
        except ValueError as exc:
            problems.append(f"{STORAGE_CONNECTION}: {exc}")
    account = env.get(f"{STORAGE_CONNECTION}__accountName")
    if account and not _ACCOUNT.fullmatch(account):
        problems.append(f"{STORAGE_CONNECTION}__accountName: a storage account name is 3-24 of a-z and 0-9")
    for suffix in ("__blobServiceUri", "__queueServiceUri", "__tableServiceUri", "__serviceUri"):
        uri = env.get(STORAGE_CONNECTION + suffix)
        if uri and not _URL.fullmatch(uri.strip()):
            problems.append(f"{STORAGE_CONNECTION}{suffix}: must be the service's https:// URL")
    return problems


def _connection_string(value: str) -> None:
    """As azure-storage-blob (_shared/base_client.py) and azure-data-tables (_base_client.py) parse it in
    `parse_connection_str`: `Key=value` pairs joined by ';' (keys in any case); `UseDevelopmentStorage=true`; else
    credentials (AccountName and AccountKey, or SharedAccessSignature) and, for the blob and table services chatft
    uses, an endpoint or the AccountName to build one from."""
    pairs = [item.split("=", 1) for item in value.rstrip(";").split(";")]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError("is not a connection string (Key=value;Key=value..., or UseDevelopmentStorage=true)")
    keys = {key.upper(): setting for key, setting in pairs}
    if "USEDEVELOPMENTSTORAGE" in keys:
        if keys["USEDEVELOPMENTSTORAGE"] != "true":
            raise ValueError("UseDevelopmentStorage can only be true")
        return
    if not ({"ACCOUNTNAME", "ACCOUNTKEY"} <= set(keys) or keys.get("SHAREDACCESSSIGNATURE")):
        raise ValueError(
            "the connection string has no credentials (AccountName and AccountKey, or SharedAccessSignature)"
        )
    for service in ("Blob", "Table"):
        endpoint = keys.get(f"{service.upper()}ENDPOINT")
        if endpoint is None and not keys.get("ACCOUNTNAME"):
            raise ValueError(f"the connection string names neither {service}Endpoint nor AccountName")
        if endpoint is not None and not _URL.fullmatch(endpoint.strip()):
            raise ValueError(f"the connection string's {service}Endpoint is not an http(s) URL")


IDENTITY_SETTINGS = (
    "AZURE_CLIENT_ID",
    f"{STORAGE_CONNECTION}__credential",
    f"{STORAGE_CONNECTION}__clientId",
    f"{STORAGE_CONNECTION}__managedIdentityResourceId",
    f"{STORAGE_CONNECTION}__blobServiceUri",
    f"{STORAGE_CONNECTION}__queueServiceUri",
    f"{STORAGE_CONNECTION}__tableServiceUri",
)
"""Settings of a deployment in Azure only (identity-based connections): not in the local sample."""


@dataclass(frozen=True)
class IdentityChoice:
    managed: bool
    """True: ManagedIdentityCredential only (what `__credential=managedidentity` asks for)."""
    client_id: str | None = None
    resource_id: str | None = None


def identity_for(connection: str | None, env: Mapping[str, str] | None = None) -> IdentityChoice:
    """Which identity a connection's settings ask for (pure: the settings decide, nothing is called)."""
    env = os.environ if env is None else env
    if not connection:
        return IdentityChoice(managed=False, client_id=env.get("AZURE_CLIENT_ID") or None)
    kind = (env.get(f"{connection}__credential") or "").strip().lower()
    client_id = env.get(f"{connection}__clientId") or None
    resource_id = env.get(f"{connection}__managedIdentityResourceId") or None
    if kind == "managedidentity":
        return IdentityChoice(managed=True, client_id=client_id, resource_id=None if client_id else resource_id)
    return IdentityChoice(managed=False, client_id=client_id or env.get("AZURE_CLIENT_ID") or None)


def upload_trigger_source(env: Mapping[str, str] | None = None) -> str:
    """Read at function-index time, so a bad value fails indexing with the setting's name."""
    env = os.environ if env is None else env
    try:
        return _trigger_source(env.get("UPLOAD_TRIGGER_SOURCE", DEFAULT_TRIGGER_SOURCE))
    except ValueError as exc:
        raise SettingsError(f"invalid settings: UPLOAD_TRIGGER_SOURCE: {exc}") from exc
