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

from shared.domain import roles
from shared.domain.finetune.compute import SERVERLESS
from shared.domain.finetune.errors import PreflightError
from shared.domain.host_settings import unused_settings
from shared.domain.roles import Assignment
from shared.domain.wiring import (
    Expected,
    Principal,
    Route,
    best_route,
    delivers_to_app,
    job_events_route,
    principal_of,
    role_fix,
    uploads_route,
)
from shared.settings import IDENTITY_SETTINGS, STORAGE_CONNECTION, Settings, setting_names, storage_connection

ARM_SCOPE = "https://management.azure.com/.default"
ENV_TAG = "azd-env-name"
"""The tag infra/main.bicep puts on everything an azd environment creates (`tags` there)."""
DEPLOYER_OUTPUT = "DEPLOYER_PRINCIPAL_ID"
APP_OUTPUT = "APP_PRINCIPAL_ID"
"""infra/main.bicep outputs: who `azd provision` gave roles to (azd keeps them in .azure/<env>/.env)."""
PROPAGATION = "Azure takes up to 10 minutes to apply a new role assignment"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    account_wide: bool = False
    """The failure is the account's, not this check's (no answer, no sign-in): checks on the same account
    would only repeat it."""


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
    arm: Callable[[], Any] | None = None
    """shared.azure.arm.ArmReads: the caller's role assignments and the app's settings."""
    principal: Principal | None = field(default=None, init=False)
    assignments: list[Assignment] | None = field(default=None, init=False)


def is_sdk_validation(exc: BaseException) -> bool:
    """azure-ai-ml refused its own arguments before any request (ValidationException, azure/ai/ml/exceptions.py)."""
    return type(exc).__name__ == "ValidationException" and type(exc).__module__.startswith("azure.ai.ml")


def _error(exc: BaseException) -> str:
    """What a service said, in one line; a sign-in failure as the fix (never the credential chain's dump)."""
    from shared.azure.identity import sign_in_problem

    if (signed_out := sign_in_problem(exc)) is not None:
        return f"{signed_out[0]}: {signed_out[1]}"
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


def _is_emulator(ctx: DoctorContext) -> bool:
    found = storage_connection(ctx.env, service="blob", connection=STORAGE_CONNECTION)
    text = (found[1] if found else "").lower()
    return "usedevelopmentstorage=true" in text or "127.0.0.1" in text or "localhost" in text


_NO_ANSWER = (
    ("refused", "connection refused"),
    ("failed to resolve", "no such host (the name does not resolve)"),
    ("name or service not known", "no such host (the name does not resolve)"),
    ("timed out", "timed out"),
)
"""urllib3's words for why nothing answered (its message, kept by azure-core's ServiceRequestError), in short."""


def _account_wide(exc: BaseException) -> bool:
    """No answer at all, or no token: every call to the account fails the same way."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    from shared.azure.identity import credential_failure

    return isinstance(exc, (ServiceRequestError, ServiceResponseError)) or credential_failure(exc) is not None


def _storage_error(ctx: DoctorContext, exc: BaseException, service: str) -> str:
    """What storage said, or for no answer at all the address asked and why (not urllib3's object text)."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    from shared.azure.identity import sign_in_problem

    if (signed_out := sign_in_problem(exc)) is not None:
        return signed_out[0]
    if not isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return _error(exc)
    found = storage_connection(ctx.env, service=service, connection=STORAGE_CONNECTION)
    address = _endpoint(found[1] if found else "", service)
    text = str(exc).lower()
    why = next((said for needle, said in _NO_ANSWER if needle in text), "no answer")
    return f"{address or 'the storage account'}: {why}"


def _endpoint(value: str, service: str) -> str:
    """The host:port a connection setting's `service` endpoint points at."""
    if "=" not in value:
        parts = urlsplit(value)
        return parts.netloc
    for part in value.split(";"):
        key, _, found = part.partition("=")
        if key.strip().lower() == f"{service}endpoint":
            return urlsplit(found.strip()).netloc
    if "usedevelopmentstorage=true" in value.lower():
        return "127.0.0.1:" + {"blob": "10000", "queue": "10001", "table": "10002"}[service]
    return ""


def _account_scope(ctx: DoctorContext, under: str = "") -> str:
    """The account's resource id as a shell expression, or a container's or table's below it (`under`)."""
    return f'"$(az storage account show -n {_account(ctx) or "<account>"} --query id -o tsv){under}"'


def check_identity(ctx: DoctorContext) -> Check:
    from shared.azure.identity import sign_in_problem

    try:
        token = ctx.credential.get_token(ARM_SCOPE).token
    except Exception as exc:
        what, fix = sign_in_problem(exc, ctx.env) or (_error(exc), "run `az login` (or `azd auth login`)")
        return Check("identity", False, f"{what}; the checks that need a token were not run", fix)
    ctx.principal = principal_of(token)
    return Check("identity", True, f"token for {ctx.principal.describe()}")


def _principal(ctx: DoctorContext) -> Principal:
    return ctx.principal or Principal("<object id>", "<tenant>", "you", "User")


def _holder(ctx: DoctorContext) -> str | None:
    """Which principal of the template the caller is: roles.DEPLOYER, roles.APP, "" (neither), or None when
    these settings do not say (no azd outputs) or the caller is unknown."""
    deployer, app = (ctx.env.get(DEPLOYER_OUTPUT) or "").lower(), (ctx.env.get(APP_OUTPUT) or "").lower()
    if ctx.principal is None or not (deployer or app):
        return None
    me = ctx.principal.object_id.lower()
    return roles.DEPLOYER if me == deployer else roles.APP if me == app else ""


def _holds(ctx: DoctorContext, role: str, target: str | None) -> bool | None:
    """Whether the caller's role assignments grant `role` at `target`; None when they cannot be read."""
    if not target or ctx.arm is None or ctx.principal is None:
        return None
    if ctx.assignments is None:
        try:
            ctx.assignments = ctx.arm().role_assignments(ctx.principal.object_id)
        except Exception:
            logging.getLogger("chatft").debug("listing role assignments failed", exc_info=True)
            ctx.arm = None  # cannot list: do not ask again for the next check
            return None
    return roles.holds(ctx.assignments, role, target)


def role_advice(ctx: DoctorContext, role: str, scope_kind: str, target: str | None, scope_expr: str) -> str:
    """The fix for a refusal that `role` at a scope would cure. A role `azd provision` assigns is never answered
    with `az role assignment create`: a hand-made assignment of the same role, principal and scope makes the next
    provision fail with RoleAssignmentExists (Azure keeps one per triple), and a fresh one may just not be applied
    yet (up to 10 minutes, learn.microsoft.com/azure/role-based-access-control/troubleshooting)."""
    principal, holder = _principal(ctx), _holder(ctx)
    held = _holds(ctx, role, target)
    create = role_fix(principal, role, scope_expr)
    if held:
        return f"{principal.name} has {role} there already: {PROPAGATION}; wait and run `chatft doctor` again"
    if holder:
        if not roles.template_assigns(holder, role, scope_kind):
            return create
        if held is False:
            return (
                f"run `azd provision`: it assigns {role} there to {principal.name} (not `az role assignment "
                "create`: a hand-made assignment makes the next provision fail with RoleAssignmentExists)"
            )
        return (
            f"`azd provision` assigns {role} there to {principal.name} and {PROPAGATION}: if it ran just now, wait "
            "and run `chatft doctor` again, else run `azd provision` (not `az role assignment create`: the next "
            "provision would fail with RoleAssignmentExists)"
        )
    if holder is None and any(roles.template_assigns(h, role, scope_kind) for h in (roles.DEPLOYER, roles.APP)):
        if held is False:
            return (
                f"if `azd provision` ran as you, run it again (it assigns {role} there; a hand-made assignment "
                f"would make it fail with RoleAssignmentExists); otherwise {create}"
            )
        return (
            f"if `azd provision` ran as you in the last 10 minutes, wait and run `chatft doctor` again (it assigns "
            f"{role} there; a hand-made assignment would make the next one fail with RoleAssignmentExists); "
            f"otherwise {create}"
        )
    return create


def _account_id(ctx: DoctorContext) -> str | None:
    """The storage account's resource id (the azd output AZURE_STORAGE_ACCOUNT_ID), if it is this account's."""
    found = (ctx.env.get("AZURE_STORAGE_ACCOUNT_ID") or "").rstrip("/")
    account = _account(ctx)
    return found if account and found.lower().endswith(f"/storageaccounts/{account.lower()}") else None


def _storage_fix(
    ctx: DoctorContext, exc: Exception, missing: str, role: str, service: str, under: str, scope_kind: str
) -> str:
    """404: create it; 403: the data role on just that container or table (what `azd up` gives the person who
    deploys); anything else: the endpoint setting is wrong."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    from shared.azure.identity import sign_in_problem

    if (signed_out := sign_in_problem(exc)) is not None:
        return signed_out[1]
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):  # refused, reset, timed out: no answer
        if ctx.settings.ml_backend == "local" or _is_emulator(ctx):
            return f"nothing answered: is Azurite running? `chatft dev` starts it (or check {STORAGE_CONNECTION})"
        return f"nothing answered: is the account reachable from here? check {STORAGE_CONNECTION}__{service}ServiceUri"
    status = _status(exc)
    if status == 404:
        return missing
    if status == 403:
        account_id = _account_id(ctx)
        target = f"{account_id}{under}" if account_id else None
        return role_advice(ctx, role, scope_kind, target, _account_scope(ctx, under))
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
        maker = "`chatft dev` does" if s.ml_backend == "local" else "`azd provision` does"
        missing = f"create the containers {s.upload_container} and {s.prepared_container} ({maker})"
        under = f"/blobServices/default/containers/{name}"
        kind = roles.UPLOAD_CONTAINER if name == s.upload_container else roles.PREPARED_CONTAINER
        fix = _storage_fix(ctx, exc, missing, "Storage Blob Data Contributor", "blob", under, kind)
        return Check("storage containers", False, _storage_error(ctx, exc, "blob"), fix, _account_wide(exc))
    return Check(
        "storage containers", True, f"{s.upload_container} and {s.prepared_container} readable on {_account(ctx)}"
    )


def check_ledger(ctx: DoctorContext) -> Check:
    table = ctx.settings.ledger_table
    try:
        client = ctx.table_service().get_table_client(table)
        next(iter(client.query_entities("PartitionKey eq 'chatft-doctor'", results_per_page=1).by_page()), None)
    except Exception as exc:
        maker = "`chatft dev` does" if ctx.settings.ml_backend == "local" else "`azd provision` does; the app also"
        missing = f"create the table {table} ({maker} creates it on first use)"
        under = f"/tableServices/default/tables/{table}"
        fix = _storage_fix(ctx, exc, missing, "Storage Table Data Contributor", "table", under, roles.LEDGER_TABLE)
        return Check("ledger table", False, _storage_error(ctx, exc, "table"), fix)
    return Check("ledger table", True, f"{table} readable")


WORKSPACE_SETTINGS = ("AML_SUBSCRIPTION_ID", "AML_RESOURCE_GROUP", "AML_WORKSPACE")
WORKSPACE_FIX = (
    "set AML_SUBSCRIPTION_ID, AML_RESOURCE_GROUP and AML_WORKSPACE (`azd env get-values` lists them; "
    "`chatft doctor --env NAME` reads them), or ML_BACKEND=local to work offline"
)


def missing_workspace_settings(settings: Settings) -> str | None:
    """One line naming the AML_* settings ML_BACKEND=azure lacks, with the fix; None when none is missing."""
    missing = [p.split(":")[0] for p in settings.submission_problems if p.split(":")[0] in WORKSPACE_SETTINGS]
    return f"{', '.join(missing)} not set (ML_BACKEND=azure): {WORKSPACE_FIX}" if missing else None


def check_workspace(ctx: DoctorContext) -> Check:
    """The workspace answers. Missing settings are named before azure-ai-ml sees them: its own validation
    says "Please provide a workspace name or use a MLClient with a workspace name set." (a ValidationException,
    azure/ai/ml/operations/_workspace_operations_base.py), which names no setting."""
    s = ctx.settings
    if missing := missing_workspace_settings(s):
        return Check("workspace", False, missing.split(": ")[0], WORKSPACE_FIX)
    try:
        location = ctx.workspace().location()
    except Exception as exc:
        if is_sdk_validation(exc):
            return Check("workspace", False, f"{s.aml_workspace}: not a valid workspace setting", WORKSPACE_FIX)
        fix = (
            role_advice(
                ctx, "AzureML Data Scientist", roles.WORKSPACE_SCOPE, s.workspace_resource_id, s.workspace_resource_id
            )
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


def _this_app(ctx: DoctorContext) -> tuple[str, str]:
    """(host name, site name) of this environment's function app, when the settings say (azd's outputs
    SERVICE_CHATFT_BASE_URL and AZURE_FUNCTION_APP_NAME, or the platform's WEBSITE_HOSTNAME and WEBSITE_SITE_NAME)."""
    base = ctx.env.get("SERVICE_CHATFT_BASE_URL") or ""
    host = (urlsplit(base).hostname or "") if base else ctx.env.get("WEBSITE_HOSTNAME") or ""
    return host, ctx.env.get("AZURE_FUNCTION_APP_NAME") or ctx.env.get("WEBSITE_SITE_NAME") or ""


def _target(route: Route) -> str:
    return route.webhook_host or route.function_resource_id.rstrip("/").split("/sites/")[-1].split("/")[0]


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
    host, site = _this_app(ctx)
    mine = [r for r in found if delivers_to_app(r, host, site)]
    route, problem = best_route(mine, expected)
    if route is None:
        elsewhere = [r for r in found if best_route([r], expected)[1] is None]
        note = "".join(f"; {r.topic}/{r.name} delivers to {_target(r)} (another environment's)" for r in elsewhere)
        return Check(
            name,
            False,
            f"no Event Grid subscription on {topic} delivers to {expected.function}"
            + (f" of this app ({host or site})" if elsewhere else "")
            + note,
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


def _on_workspace(ctx: DoctorContext) -> Callable[[str], bool]:
    workspace = ctx.settings.workspace_resource_id.lower().rstrip("/")
    return lambda source: source.rstrip("/") == workspace


def check_job_route(ctx: DoctorContext) -> Check:
    return _route_check(ctx, job_events_route(), _on_workspace(ctx), ctx.settings.aml_workspace)


def check_shared(ctx: DoctorContext) -> Check | None:
    """What this environment uses that another azd environment owns: the workspace's system topic (Azure allows
    one per source, so a second environment on a workspace reuses the first one's: its `azd-env-name` tag names
    the owner) and the other environments' subscriptions on it. None when the environment's name is unknown."""
    from shared.azure.event_routes import routes, topics_on

    me = ctx.env.get("AZURE_ENV_NAME") or ""
    if not me:
        return None
    name = "other azd environments"
    try:
        client = ctx.eventgrid()
        topics = topics_on(client, _on_workspace(ctx))
        found = [r for t in topics for r in routes(client, t)]
    except Exception as exc:
        return Check(name, False, _error(exc), "grant the Reader role on the workspace's resource group")
    notes = []
    for topic in topics:
        owner = (topic.tags or {}).get(ENV_TAG)
        if owner and owner != me:
            notes.append(
                f"the workspace's system topic {topic.name} is environment {owner!r}'s (tag {ENV_TAG}); "
                "this one reuses it (CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC)"
            )
    host, site = _this_app(ctx)
    if host or site:
        others = sorted({_target(r) for r in found if not delivers_to_app(r, host, site) and _target(r)})
        if others:
            notes.append(f"its job events also go to {', '.join(others)} (other environments' apps)")
    if not notes:
        return Check(name, True, f"nothing environment {me!r} uses on {ctx.settings.aml_workspace} is another's")
    return Check(name, True, "; ".join(notes))


def check_app_settings(ctx: DoctorContext) -> Check | None:
    """Settings on the function app that nothing reads: the AVM site module merges app settings, so one an
    earlier version set stays when a newer template drops it. None when the app is not known (no azd outputs)."""
    app, group = ctx.env.get("AZURE_FUNCTION_APP_NAME") or "", ctx.env.get("RESOURCE_GROUP") or ""
    if not app or not group or ctx.arm is None:
        return None
    name = "app settings"
    try:
        names = list(ctx.arm().app_settings(group, app))
    except Exception as exc:
        return Check(
            name,
            False,
            f"{app}: {_error(exc)}",
            "reading them needs Microsoft.Web/sites/config/list/action on the app (Website Contributor)",
        )
    unused = unused_settings(names, [*setting_names(), *IDENTITY_SETTINGS], [STORAGE_CONNECTION])
    if not unused:
        return Check(name, True, f"{app}: each of its {len(names)} settings is read by chatft or the host")
    return Check(
        name,
        True,
        f"{app}: read by nothing (left by an earlier version?): {', '.join(unused)}",
        f"az functionapp config appsettings delete -n {app} -g {group} --setting-names {' '.join(unused)}",
    )


def check_metrics(ctx: DoctorContext) -> Check:
    """One metrics query as the janitor makes it, for an endpoint id in the workspace."""
    from shared.azure.metrics import MetricsUnauthorized

    s = ctx.settings
    probe = f"{s.workspace_resource_id}/onlineEndpoints/chatft-doctor-probe"
    try:
        ctx.metrics().probe(probe, timedelta(minutes=5))
    except MetricsUnauthorized as exc:
        # The app gets the template's custom role for these reads; a person, the built-in role that has them.
        role = roles.APP_READER if _holder(ctx) == roles.APP else roles.METRICS_READER
        fix = role_advice(ctx, role, roles.SUBSCRIPTION, exc.scope, exc.scope)
        return Check("janitor metrics", False, str(exc), fix)
    except Exception as exc:
        logging.getLogger("chatft").debug("metrics probe failed", exc_info=True)
        return Check(
            "janitor metrics",
            False,
            _error(exc),
            "see docs/troubleshooting.md, 'Troubleshooting: metrics not authorised'",
        )
    return Check("janitor metrics", True, "the request metrics of online endpoints are readable")


def check_guards(ctx: DoctorContext) -> Check:
    """The caps in effect, in one line (docs/guards.md): read from the settings, nothing is asked of Azure."""
    s = ctx.settings
    budget = f"${s.monthly_budget_usd:g}" if s.monthly_budget_usd != "" else "none"
    price = f"${s.gpu_hourly_price_usd:g}/GPU h" if s.gpu_hourly_price_usd != "" else "none (GPU hours not priced)"
    return Check(
        "guards",
        True,
        f"MAX_ACTIVE_JOBS={s.max_active_jobs}, MAX_LIVE_ENDPOINTS={s.max_live_endpoints} "
        f"(DEPLOY_EVICT_IDLE={'true' if s.deploy_evict_idle else 'false'}), JOB_MAX_HOURS={s.job_max_hours:g}, "
        f"MONTHLY_BUDGET_USD={budget} (GPU_HOURLY_PRICE_USD {price})",
    )


def _storage_needs_token(ctx: DoctorContext) -> bool:
    found = storage_connection(ctx.env, service="blob", connection=STORAGE_CONNECTION)
    return bool(found) and found[0] == "account_url"


def storage_checks(ctx: DoctorContext) -> list[Check]:
    """Containers, then the ledger on the same account unless the account did not answer (said once)."""
    containers = check_containers(ctx)
    return [containers] if containers.account_wide else [containers, check_ledger(ctx)]


def run_doctor(ctx: DoctorContext) -> list[Check]:
    """Every check of an Azure target, in the order a person would fix them; one failure never hides the others,
    and a failure several checks share (no sign-in, storage unreachable) is said once. ML_BACKEND=local is
    shared.flows.doctor_local's."""
    identity = check_identity(ctx)
    if not identity.ok:
        storage = [] if _storage_needs_token(ctx) else storage_checks(ctx)
        return [identity, *storage, check_guards(ctx)]
    workspace = check_workspace(ctx)
    checks = [identity, *storage_checks(ctx), workspace]
    if workspace.ok:  # what lives in (or is read through) the workspace is asked only of one that answered
        checks += [*check_model_and_compute(ctx), check_datastore(ctx)]
    checks.append(check_upload_route(ctx))
    if workspace.ok:
        checks += [check_job_route(ctx), check_metrics(ctx)]
    checks.append(check_guards(ctx))
    later = (check_shared(ctx) if workspace.ok else None, check_app_settings(ctx))
    return checks + [c for c in later if c is not None]
