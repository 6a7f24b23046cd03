"""`chatft doctor`'s wiring: where the deployment's settings come from, the real clients, the output.

Settings come from, in order: `--settings FILE` (a local.settings.json), `--env NAME` (the azd
environment `.azure/<NAME>/.env`: the template's outputs, whose CHATFT_APP_SETTINGS holds, as JSON,
exactly the app settings the function app was given), or this process's environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.flows.doctor import Check, DoctorContext, run_doctor
from shared.settings import STORAGE_CONNECTION, Settings, SettingsError, storage_connection

IDENTITY_SUFFIXES = ("__credential", "__clientId", "__managedIdentityResourceId")
APP_SETTINGS_OUTPUT = "CHATFT_APP_SETTINGS"
"""infra/main.bicep's output: `string(chatftAppSettings)`."""


class DoctorSetupError(Exception):
    """The settings could not be found or read: nothing was checked."""


def azd_env(name: str | None, root: Path = Path(".")) -> dict[str, str]:
    """The values azd keeps for an environment (`.azure/<name>/.env`); the default one if no name."""
    azure = root / ".azure"
    if not name:
        try:
            name = json.loads((azure / "config.json").read_text(encoding="utf-8")).get("defaultEnvironment")
        except (OSError, ValueError) as exc:
            raise DoctorSetupError(
                f"no azd environment here ({azure / 'config.json'}: {exc}); pass --env NAME"
            ) from exc
        if not name:
            raise DoctorSetupError(f"{azure / 'config.json'} names no default environment; pass --env NAME")
    path = azure / str(name) / ".env"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DoctorSetupError(f"azd environment {name!r} not found ({path}): run `azd env list`") from exc
    return with_app_settings(parse_dotenv(text), path)


def with_app_settings(values: dict[str, str], where: Path) -> dict[str, str]:
    """azd's values with the deployed app settings (the CHATFT_APP_SETTINGS output) laid over them."""
    raw = values.get(APP_SETTINGS_OUTPUT)
    if raw is None:
        return values
    try:
        settings = json.loads(raw)
    except ValueError as exc:
        raise DoctorSetupError(f"{where}: {APP_SETTINGS_OUTPUT} is not JSON ({exc}); run `azd provision`") from exc
    if not isinstance(settings, dict):
        raise DoctorSetupError(f"{where}: {APP_SETTINGS_OUTPUT} is not a JSON object; run `azd provision`")
    return {**values, **{str(k): str(v) for k, v in settings.items()}}


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY="value" lines as azd writes them (double-quoted, backslash-escaped); comments skipped."""
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


def settings_file(path: Path) -> dict[str, str]:
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values")
    except (OSError, ValueError, AttributeError) as exc:
        raise DoctorSetupError(f"{path}: not a readable local.settings.json ({exc})") from exc
    if not isinstance(values, dict):
        raise DoctorSetupError(f'{path}: no "Values" object')
    return {str(k): str(v) for k, v in values.items()}


def as_caller(env: Mapping[str, str]) -> dict[str, str]:
    """The deployment's settings, minus what selects the *app's* managed identity: the doctor runs
    as whoever runs it (a developer's login, or the identity of the machine it runs on)."""
    return {k: v for k, v in env.items() if not k.endswith(IDENTITY_SUFFIXES) and k != "AZURE_CLIENT_ID"}


def build_context(env: Mapping[str, str]) -> DoctorContext:
    """The real clients, each built only when its check runs."""
    from azure.identity import DefaultAzureCredential

    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        raise DoctorSetupError(str(exc)) from exc
    credential = DefaultAzureCredential()

    def blob_service() -> Any:
        from shared.azure.storage import probe_blob_options
        from shared.azure.upload import storage_client

        return storage_client(env, **probe_blob_options())

    def table_service() -> Any:
        from azure.data.tables import TableServiceClient

        from shared.azure.storage import probe_table_options

        kind, value = storage_connection(env, service="table") or ("", "")
        if kind == "connection_string":
            return TableServiceClient.from_connection_string(value, **probe_table_options())
        if not value:
            raise DoctorSetupError(f"{STORAGE_CONNECTION}__tableServiceUri is not set")
        return TableServiceClient(endpoint=value, credential=credential, **probe_table_options())

    workspace_cache: list[Any] = []

    def workspace() -> Any:
        if not workspace_cache:
            from shared.azure.azureml.client import AzureMLWorkspace

            workspace_cache.append(AzureMLWorkspace(settings, credential_factory=lambda: credential))
        return workspace_cache[0]

    def eventgrid() -> Any:
        from azure.mgmt.eventgrid import EventGridManagementClient

        return EventGridManagementClient(credential, settings.aml_subscription_id)

    def metrics() -> Any:
        from shared.azure.metrics import AzureMonitorUsage

        return AzureMonitorUsage(region=workspace().location, credential_factory=lambda: credential)

    def arm() -> Any:
        from shared.azure.arm import ArmReads

        return ArmReads(credential, env.get("AZURE_SUBSCRIPTION_ID") or settings.aml_subscription_id)

    return DoctorContext(settings, env, credential, blob_service, table_service, workspace, eventgrid, metrics, arm)


def doctor_env(env_name: str | None, settings_path: Path | None, use_azd: bool) -> dict[str, str]:
    if settings_path is not None:
        return as_caller(settings_file(settings_path))
    if use_azd:
        return as_caller(azd_env(env_name))
    return as_caller(os.environ)


def run(env: Mapping[str, str], context: DoctorContext | None = None) -> list[Check]:
    """The checks of the target the settings name: ML_BACKEND=local is checked offline, never against Azure."""
    ctx = context or build_context(env)
    if ctx.settings.ml_backend == "local":
        from shared.flows.doctor_local import run_local_doctor

        return run_local_doctor(ctx)
    return run_doctor(ctx)
