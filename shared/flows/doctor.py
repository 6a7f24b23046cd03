"""`chatft doctor`: is this deployment wired right? One check a line, pass or fail, with the
exact fix for each failure. Read-only: it creates, changes and deletes nothing.

It runs with the caller's own credential (DefaultAzureCredential: a developer's `az login`, or
the managed identity when run in Azure) and says whose it is first, because every data-plane
answer below is that principal's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from shared.domain.finetune.compute import SERVERLESS
from shared.domain.finetune.errors import PreflightError
from shared.domain.wiring import (
    Expected,
    Principal,
    best_route,
    job_events_route,
    principal_of,
    role_fix,
    uploads_route,
)
from shared.settings import STORAGE_CONNECTION, Settings, storage_connection

ARM_SCOPE = "https://management.azure.com/.default"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass
class DoctorContext:
    """Settings, and how to build each client (tests pass fakes that return the SDKs' own models)."""

    settings: Settings
    env: Mapping[str, str]
    credential: Any
    blob_service: Callable[[], Any]
    table_service: Callable[[], Any]
    workspace: Callable[[], Any]
    """The AzureMLWorkspace adapter (MLClient inside)."""
    eventgrid: Callable[[], Any]
    """azure.mgmt.eventgrid.EventGridManagementClient for AML_SUBSCRIPTION_ID."""
    metrics: Callable[[], Any]
    """shared.azure.metrics.AzureMonitorUsage."""
    principal: Principal | None = field(default=None, init=False)


def _error(exc: BaseException) -> str:
    code = getattr(getattr(exc, "error", None), "code", None)
    status = getattr(exc, "status_code", None)
    text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return " ".join(str(p) for p in (status, code, text) if p)


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _account(ctx: DoctorContext) -> str:
    found = storage_connection(ctx.env, service="blob", connection=STORAGE_CONNECTION)
    if found and found[0] == "account_url":
        return (urlsplit(found[1]).hostname or "").split(".")[0]
    if found:
        for part in found[1].split(";"):
            if part.lower().startswith("accountname="):
                return part.split("=", 1)[1]
    return ""


def _account_scope(ctx: DoctorContext, under: str = "") -> str:
    """The account's resource id as a shell expression, or a container's or table's below it (`under`)."""
    return f'"$(az storage account show -n {_account(ctx) or "<account>"} --query id -o tsv){under}"'


def check_identity(ctx: DoctorContext) -> Check:
    try:
        token = ctx.credential.get_token(ARM_SCOPE).token
    except Exception as exc:
        return Check(
            "identity",
            False,
            f"no credential resolved: {_error(exc)}",
            "run `az login` (or `azd auth login`); in Azure, give the app a managed identity and set AZURE_CLIENT_ID",
        )
    ctx.principal = principal_of(token)
    return Check("identity", True, f"token for {ctx.principal.describe()}")


def _principal(ctx: DoctorContext) -> Principal:
    return ctx.principal or Principal("<object id>", "<tenant>", "you", "User")


def _storage_fix(ctx: DoctorContext, exc: Exception, missing: str, role: str, service: str, under: str) -> str:
    """404: create it; 403: the data role on just that container or table (what `azd up` gives the person who
    deploys); anything else: the endpoint setting is wrong."""
    status = _status(exc)
    if status == 404:
        return missing
    if status == 403:
        return role_fix(_principal(ctx), role, _account_scope(ctx, under))
    return f"set {STORAGE_CONNECTION}__{service}ServiceUri to the account's {service} endpoint"


def check_containers(ctx: DoctorContext) -> Check:
    s, service = ctx.settings, None
    name = s.upload_container
    try:
        service = ctx.blob_service()
        for name in (s.upload_container, s.prepared_container):
            container = service.get_container_client(name)
            container.get_container_properties()
            next(iter(container.list_blobs(results_per_page=1).by_page()), None)
    except Exception as exc:
        missing = f"create the containers {s.upload_container} and {s.prepared_container} (`azd provision` does)"
        under = f"/blobServices/default/containers/{name}"
        fix = _storage_fix(ctx, exc, missing, "Storage Blob Data Contributor", "blob", under)
        return Check("storage containers", False, _error(exc), fix)
    return Check(
        "storage containers", True, f"{s.upload_container} and {s.prepared_container} readable on {_account(ctx)}"
    )


def check_ledger(ctx: DoctorContext) -> Check:
    table = ctx.settings.ledger_table
    try:
        client = ctx.table_service().get_table_client(table)
        next(iter(client.query_entities("PartitionKey eq 'chatft-doctor'", results_per_page=1).by_page()), None)
    except Exception as exc:
        missing = f"create the table {table} (`azd provision` does; the app also creates it on first use)"
        fix = _storage_fix(
            ctx, exc, missing, "Storage Table Data Contributor", "table", f"/tableServices/default/tables/{table}"
        )
        return Check("ledger table", False, _error(exc), fix)
    return Check("ledger table", True, f"{table} readable")


def _workspace_scope(s: Settings) -> str:
    return s.workspace_resource_id


def check_workspace(ctx: DoctorContext) -> Check:
    s = ctx.settings
    try:
        location = ctx.workspace().location()
    except Exception as exc:
        fix = (
            role_fix(_principal(ctx), "AzureML Data Scientist", _workspace_scope(s))
            if _status(exc) == 403
            else "check AML_SUBSCRIPTION_ID, AML_RESOURCE_GROUP and AML_WORKSPACE"
        )
        return Check("workspace", False, f"{s.aml_workspace}: {_error(exc)}", fix)
    return Check("workspace", True, f"{s.aml_workspace} in {location}")


def check_model_and_compute(ctx: DoctorContext) -> list[Check]:
    try:
        model, _, warnings, compute, _ = ctx.workspace().preflight()
    except PreflightError as exc:
        return [Check("foundation model and compute", False, str(exc), f"change {exc.setting or 'the settings'}")]
    except Exception as exc:
        return [Check("foundation model and compute", False, _error(exc), "check AML_REGISTRY and FINETUNE_MODEL")]
    note = f"; {'; '.join(warnings)}" if warnings else ""
    checks = [Check("foundation model", True, f"{model.id} passes preflight{note}")]
    if compute.target != SERVERLESS:
        checks.append(
            Check("compute", True, f"cluster {compute.target} ({compute.vm_size}, {compute.gpus_per_node} GPU)")
        )
        return checks
    try:
        quota = ctx.workspace().quota_for(compute.vm_size)
    except Exception as exc:
        return [
            *checks,
            Check("compute quota", False, _error(exc), "grant the AzureML Data Scientist role on the workspace"),
        ]
    if quota is None:
        checks.append(
            Check("compute quota", True, f"serverless {compute.vm_size}: the service reports no quota for it")
        )
    else:
        family, needed, free = quota
        ok = free >= needed
        checks.append(
            Check(
                "compute quota",
                ok,
                f"serverless {compute.vm_size} needs {needed} {family} cores, {free} free",
                None
                if ok
                else f"request {family} quota in Azure ML studio (Quota page), or set FINETUNE_INSTANCE_TYPE to a size you have",
            )
        )
    return checks


def check_datastore(ctx: DoctorContext) -> Check:
    s = ctx.settings
    fix = (
        f"az ml datastore create -w {s.aml_workspace} -g {s.aml_resource_group} with name {s.aml_datastore}, "
        f"type azure_blob, account_name {_account(ctx) or '<account>'}, container_name {s.prepared_container}, "
        "no credentials (identity-based); `azd provision` creates it"
    )
    try:
        target = ctx.workspace().datastore_target(s.aml_datastore)
    except Exception as exc:
        return Check("datastore", False, _error(exc), fix)
    if target is None:
        return Check("datastore", False, f"{s.aml_datastore} does not exist", fix)
    account, container, credential = target
    problems = []
    if container != s.prepared_container:
        problems.append(f"points at container {container}, not {s.prepared_container}")
    if _account(ctx) and account.lower() != _account(ctx).lower():
        problems.append(f"points at account {account}, not {_account(ctx)}")
    if credential != "NoneCredentialConfiguration":
        problems.append(f"stores a credential ({credential}); chatft needs identity-based access")
    if problems:
        return Check("datastore", False, f"{s.aml_datastore} " + "; ".join(problems), fix)
    return Check("datastore", True, f"{s.aml_datastore} -> {account}/{container}, identity-based")


def _route_check(ctx: DoctorContext, expected: Expected, source_matches: Callable[[str], bool], topic: str) -> Check:
    from shared.azure.event_routes import routes, topics_on

    name = f"event grid: {expected.what}"
    try:
        client = ctx.eventgrid()
        found = [r for t in topics_on(client, source_matches) for r in routes(client, t)]
    except Exception as exc:
        return Check(
            name, False, _error(exc), "grant the Reader role on the resource group (and EventGrid Contributor to fix)"
        )
    route, problem = best_route(found, expected)
    if route is None:
        return Check(
            name,
            False,
            f"no Event Grid subscription on {topic} delivers to {expected.function}",
            "run the post-deploy hook again: `azd hooks run postdeploy`",
        )
    if problem:
        return Check(
            name, False, f"{route.topic}/{route.name} {problem}", "run `azd hooks run postdeploy` to recreate it"
        )
    dead = "" if route.dead_letter else " (no dead-lettering: lost events are only logged by Event Grid)"
    return Check(name, True, f"{route.topic}/{route.name} -> {expected.function}{dead}")


def check_upload_route(ctx: DoctorContext) -> Check:
    account = _account(ctx).lower()
    suffix = f"/providers/microsoft.storage/storageaccounts/{account}"
    return _route_check(ctx, uploads_route(ctx.settings.upload_container), lambda s: s.endswith(suffix), account)


def check_job_route(ctx: DoctorContext) -> Check:
    workspace = ctx.settings.workspace_resource_id.lower().rstrip("/")
    return _route_check(ctx, job_events_route(), lambda s: s.rstrip("/") == workspace, ctx.settings.aml_workspace)


def check_metrics(ctx: DoctorContext) -> Check:
    """One metrics query as the janitor makes it, for an endpoint id in the workspace."""
    from shared.azure.metrics import MetricsUnauthorized

    s = ctx.settings
    probe = f"{s.workspace_resource_id}/onlineEndpoints/chatft-doctor-probe"
    try:
        ctx.metrics().probe(probe, timedelta(minutes=5))
    except MetricsUnauthorized as exc:
        return Check("janitor metrics", False, str(exc), role_fix(_principal(ctx), exc.role, exc.scope))
    except Exception as exc:
        logging.getLogger("chatft").debug("metrics probe failed", exc_info=True)
        return Check("janitor metrics", False, _error(exc), "see the README's troubleshooting: metrics not authorised")
    return Check("janitor metrics", True, "the request metrics of online endpoints are readable")


def run_doctor(ctx: DoctorContext) -> list[Check]:
    """Every check, in the order a person would fix them; one failure never hides the others."""
    checks = [check_identity(ctx), check_containers(ctx), check_ledger(ctx), check_workspace(ctx)]
    if checks[-1].ok:
        checks += check_model_and_compute(ctx)
        checks.append(check_datastore(ctx))
    checks += [check_upload_route(ctx), check_job_route(ctx), check_metrics(ctx)]
    return checks
