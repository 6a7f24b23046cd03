"""The role assignments `azd provision` makes (infra/*.bicep, held to this table by tests/test_roles_table.py),
and whether a principal's own assignments already grant a role where it is needed.

Why the doctor needs both: a role assignment takes up to 10 minutes to apply after it is made, and Azure keeps
one assignment per (principal, role, scope). If the doctor answered a refusal that comes from a role the
template assigns with `az role assignment create`, that hand-made assignment (a random GUID name) would make the
next `azd provision` (its assignment has a deterministic name) fail with `RoleAssignmentExists`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Who holds a role the template assigns (the principal ids the Bicep files take as parameters).
DEPLOYER = "deployer"
"""The person or pipeline that ran `azd provision` (main.bicep `principalId`)."""
APP = "app"
"""The function app's user-assigned identity."""
WORKSPACE = "workspace"
COMPUTE = "compute"
STORAGE_TOPIC = "storage topic"
WORKSPACE_TOPIC = "workspace topic"

# Where (scope kinds; each is inside the ones listed after it in CONTAINS).
UPLOAD_CONTAINER = "upload container"
PREPARED_CONTAINER = "prepared container"
DEAD_LETTER_CONTAINER = "dead-letter container"
LEDGER_TABLE = "ledger table"
STORAGE_ACCOUNT = "storage account"
WORKSPACE_STORAGE = "workspace storage account"
"""The storage account of a workspace the template creates (its system datastores)."""
APPLICATION_INSIGHTS = "application insights"
EVENTS_TOPIC = "events topic"
WORKSPACE_SCOPE = "workspace"
SUBSCRIPTION = "subscription"

CONTAINS = {
    STORAGE_ACCOUNT: {UPLOAD_CONTAINER, PREPARED_CONTAINER, DEAD_LETTER_CONTAINER, LEDGER_TABLE},
    SUBSCRIPTION: {
        UPLOAD_CONTAINER,
        PREPARED_CONTAINER,
        DEAD_LETTER_CONTAINER,
        LEDGER_TABLE,
        STORAGE_ACCOUNT,
        WORKSPACE_STORAGE,
        APPLICATION_INSIGHTS,
        EVENTS_TOPIC,
        WORKSPACE_SCOPE,
    },
}
"""Scope kind -> the scope kinds below it (a role at a scope applies to everything below it)."""

ROLE_IDS = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Monitoring Reader": "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
}
"""Built-in role definition ids (the same in every tenant): those the Bicep files assign, and Monitoring Reader,
which the doctor names for a person who wants to read the janitor's metrics."""

METRICS_READER = "Monitoring Reader"
"""The built-in role a person needs to make the janitor's metrics query (the batch API checks the subscription)."""

APP_READER = "chatft app reader"
"""metrics-rbac.bicep's custom role (named per environment: `chatft app reader (<env>, <token>)`): the batch
metrics reads and the region's VM sizes. Its id is made per environment, so assignments cannot be matched by it."""

IMPLIES = {
    "Storage Blob Data Owner": {"Storage Blob Data Contributor", "Storage Blob Data Reader"},
    "Storage Blob Data Contributor": {"Storage Blob Data Reader"},
}
"""A role -> the roles whose data actions it holds too (built-in roles reference: Owner's data actions are
`.../containers/blobs/*`, Contributor's read, write, delete, move and add)."""


@dataclass(frozen=True)
class Grant:
    holder: str
    role: str
    scope: str


TEMPLATE_GRANTS = (
    # rbac.bicep
    Grant(APP, "Storage Blob Data Owner", STORAGE_ACCOUNT),
    Grant(APP, "Storage Queue Data Contributor", STORAGE_ACCOUNT),
    Grant(APP, "Storage Table Data Contributor", STORAGE_ACCOUNT),
    Grant(APP, "Monitoring Metrics Publisher", APPLICATION_INSIGHTS),
    Grant(WORKSPACE, "Storage Blob Data Reader", PREPARED_CONTAINER),
    Grant(COMPUTE, "Storage Blob Data Reader", PREPARED_CONTAINER),
    Grant(STORAGE_TOPIC, "Storage Blob Data Contributor", DEAD_LETTER_CONTAINER),
    Grant(WORKSPACE_TOPIC, "Storage Blob Data Contributor", DEAD_LETTER_CONTAINER),
    Grant(DEPLOYER, "Storage Blob Data Contributor", UPLOAD_CONTAINER),
    Grant(DEPLOYER, "Storage Blob Data Contributor", PREPARED_CONTAINER),
    Grant(DEPLOYER, "Storage Table Data Contributor", LEDGER_TABLE),
    # workspace-storage-rbac.bicep (a workspace the template creates)
    Grant(APP, "Storage Blob Data Contributor", WORKSPACE_STORAGE),
    Grant(COMPUTE, "Storage Blob Data Contributor", WORKSPACE_STORAGE),
    Grant(DEPLOYER, "Storage Blob Data Reader", WORKSPACE_STORAGE),
    # aml.bicep
    Grant(APP, "AzureML Data Scientist", WORKSPACE_SCOPE),
    # events-topic.bicep
    Grant(APP, "EventGrid Data Sender", EVENTS_TOPIC),
    # metrics-rbac.bicep
    Grant(APP, APP_READER, SUBSCRIPTION),
)


def _grants(role: str) -> set[str]:
    return {role, *IMPLIES.get(role, set())}


def _within(inner: str, outer: str) -> bool:
    return inner == outer or inner in CONTAINS.get(outer, set())


def template_assigns(holder: str, role: str, scope: str) -> bool:
    """Whether `azd provision` gives `holder` `role` (or a role holding it) at `scope` or above it."""
    return any(g.holder == holder and role in _grants(g.role) and _within(scope, g.scope) for g in TEMPLATE_GRANTS)


@dataclass(frozen=True)
class Assignment:
    """One role assignment as ARM lists it: the role definition's resource id and the scope."""

    role_definition_id: str
    scope: str


def _covers(assigned_at: str, target: str) -> bool:
    """An assignment at `assigned_at` applies at `target` (a resource id): the same scope or one above it.
    A management group is above the subscription whenever ARM lists it for one."""
    outer, inner = assigned_at.lower().rstrip("/"), target.lower().rstrip("/")
    if not outer or outer.startswith("/providers/microsoft.management/managementgroups/"):
        return True
    return inner == outer or inner.startswith(outer + "/")


def holds(assignments: list[Assignment], role: str, target: str) -> bool | None:
    """True if one of `assignments` grants `role` (or a role holding it) at `target`; None when the role's id is
    not known here (a custom role), so the assignments cannot tell."""
    wanted = {ROLE_IDS[r].lower() for r in ROLE_IDS if role in _grants(r)}
    if role not in ROLE_IDS:
        return None
    return any(
        a.role_definition_id.lower().rstrip("/").rsplit("/", 1)[-1] in wanted and _covers(a.scope, target)
        for a in assignments
    )
