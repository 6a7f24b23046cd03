"""How a deployment must be wired, as data: which Event Grid route feeds which function, and who
a token belongs to. Pure, so `chatft doctor`'s judgements are tested without Azure.

Function names are the ones function_app indexes (tests/test_infra.py and tests/test_doctor.py
hold this module, the hook scripts and the templates to them).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

INGEST_FUNCTION = "ingest_upload"
JOB_EVENTS_FUNCTION = "job_events"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
RUN_EVENT_TYPES = (
    "Microsoft.MachineLearningServices.RunCompleted",
    "Microsoft.MachineLearningServices.RunStatusChanged",
)
STORAGE_TOPIC_TYPE = "Microsoft.Storage.StorageAccounts"
WORKSPACE_TOPIC_TYPE = "Microsoft.MachineLearningServices.Workspaces"
"""The system topic types (`topicType`) of the two sources."""


@dataclass(frozen=True)
class Route:
    """One Event Grid subscription on a system topic, as far as the doctor needs it."""

    topic: str
    name: str
    provisioning_state: str
    event_types: tuple[str, ...]
    """Included event types; empty means all."""
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    webhook_path: str = ""
    """Path of a webhook destination (the secret `code` never kept)."""
    webhook_function: str = ""
    """The `functionName` query parameter of a webhook destination."""
    webhook_host: str = ""
    """The host a webhook destination delivers to (which function app: one environment's)."""
    function_resource_id: str = ""
    """The resource id of an `AzureFunction` destination."""
    dead_letter: bool = False


@dataclass(frozen=True)
class Expected:
    what: str
    function: str
    webhook_path: str
    webhook_function: str
    event_types: tuple[str, ...]
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    notes: list[str] = field(default_factory=list)


def uploads_route(upload_container: str) -> Expected:
    """BlobCreated in the upload container, to the Event Grid blob trigger's webhook."""
    return Expected(
        what="uploads",
        function=INGEST_FUNCTION,
        webhook_path="/runtime/webhooks/blobs",
        webhook_function=f"Host.Functions.{INGEST_FUNCTION}",
        event_types=(BLOB_CREATED,),
        subject_begins_with=f"/blobServices/default/containers/{upload_container}/",
        subject_ends_with=".jsonl",
    )


def job_events_route() -> Expected:
    """RunCompleted and RunStatusChanged (failed and canceled jobs emit no RunCompleted)."""
    return Expected(
        what="job events",
        function=JOB_EVENTS_FUNCTION,
        webhook_path="/runtime/webhooks/eventgrid",
        webhook_function=JOB_EVENTS_FUNCTION,
        event_types=RUN_EVENT_TYPES,
    )


def webhook_target(url: str) -> tuple[str, str]:
    """(path, functionName) of a webhook URL; the `code` key is dropped, never returned."""
    parts = urlsplit(url)
    return parts.path, (parse_qs(parts.query).get("functionName") or [""])[0]


def delivers_to_app(route: Route, host: str, site: str) -> bool:
    """Whether the subscription delivers to this function app (by its host name, or for an AzureFunction
    destination its site name); True when neither is known (nothing to tell environments apart by)."""
    if route.function_resource_id:
        return not site or f"/sites/{site.lower()}/" in route.function_resource_id.lower()
    return not host or route.webhook_host.lower() == host.lower()


def route_problem(route: Route, expected: Expected) -> str | None:
    """Why this subscription does not deliver what `expected` needs, or None if it does."""
    targets_function = (
        route.function_resource_id.lower().rstrip("/").endswith(f"/functions/{expected.function}".lower())
        if route.function_resource_id
        else route.webhook_path.lower().rstrip("/") == expected.webhook_path.lower()
        and route.webhook_function.lower() == expected.webhook_function.lower()
    )
    if not targets_function:
        target = route.function_resource_id or f"{route.webhook_path}?functionName={route.webhook_function}"
        return f"delivers to {target or 'an unknown destination'}, not the {expected.function} function"
    if route.provisioning_state.lower() != "succeeded":
        return f"is {route.provisioning_state or 'not provisioned'}"
    wanted = {t.lower() for t in expected.event_types}
    have = {t.lower() for t in route.event_types}
    if have and not wanted <= have:
        missing = sorted(t for t in expected.event_types if t.lower() not in have)
        return f"does not include {', '.join(missing)}"
    if expected.subject_begins_with and not expected.subject_begins_with.lower().startswith(
        route.subject_begins_with.lower()
    ):
        return f"filters subjects beginning {route.subject_begins_with!r}, not {expected.subject_begins_with!r}"
    if route.subject_ends_with and not expected.subject_ends_with.lower().endswith(route.subject_ends_with.lower()):
        return (
            f"filters subjects ending {route.subject_ends_with!r}, so {expected.subject_ends_with} uploads never arrive"
        )
    return None


def best_route(routes: list[Route], expected: Expected) -> tuple[Route | None, str | None]:
    """The subscription that serves `expected` (problem None), else the closest one and its problem."""
    judged = [(route, route_problem(route, expected)) for route in routes]
    for route, problem in judged:
        if problem is None:
            return route, None
    for route, problem in judged:
        if "not the" not in (problem or ""):
            return route, problem
    return judged[0] if judged else (None, None)


@dataclass(frozen=True)
class Principal:
    object_id: str
    tenant_id: str
    name: str
    kind: str
    """'User' or 'ServicePrincipal' (as `az role assignment create --assignee-principal-type` wants)."""

    def describe(self) -> str:
        return f"{self.name} ({self.kind.lower()}, object id {self.object_id}, tenant {self.tenant_id})"


def principal_of(token: str) -> Principal:
    """Who an access token was issued to, from its claims (not verified: this only names the caller)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return Principal("unknown", "unknown", "an unreadable token", "ServicePrincipal")
    user = claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username")
    is_app = claims.get("idtyp") == "app" or not user
    name = user or claims.get("app_displayname") or claims.get("appid") or claims.get("azp") or "unknown"
    return Principal(
        object_id=str(claims.get("oid") or "unknown"),
        tenant_id=str(claims.get("tid") or "unknown"),
        name=str(name),
        kind="ServicePrincipal" if is_app else "User",
    )


def role_fix(principal: Principal, role: str, scope: str) -> str:
    """The exact command that grants `role` at `scope` (scope may be a shell expression)."""
    return (
        f"az role assignment create --assignee-object-id {principal.object_id} "
        f'--assignee-principal-type {principal.kind} --role "{role}" --scope {scope}'
    )
