"""shared/domain/roles.py's table of what `azd provision` assigns, held to every role assignment in infra/*.bicep
(read as text; the files keep one property a line), so `chatft doctor` never answers a refusal of a role the
template assigns with `az role assignment create` (issue 18, B12)."""

from __future__ import annotations

import re
from pathlib import Path

from shared.domain import roles

INFRA = Path(__file__).resolve().parent.parent / "infra"

HOLDERS = {
    "appPrincipalId": roles.APP,
    "userPrincipalId": roles.DEPLOYER,
    "workspacePrincipalId": roles.WORKSPACE,
    "computePrincipalId": roles.COMPUTE,
    "storageTopicPrincipalId": roles.STORAGE_TOPIC,
    "workspaceTopicPrincipalId": roles.WORKSPACE_TOPIC,
}
"""The principal-id parameters of the Bicep files, and whom each names."""

SCOPES = {
    ("rbac.bicep", "storageAccount"): roles.STORAGE_ACCOUNT,
    ("rbac.bicep", "uploadContainer"): roles.UPLOAD_CONTAINER,
    ("rbac.bicep", "preparedContainer"): roles.PREPARED_CONTAINER,
    ("rbac.bicep", "deadLetterContainer"): roles.DEAD_LETTER_CONTAINER,
    ("rbac.bicep", "ledgerTable"): roles.LEDGER_TABLE,
    ("rbac.bicep", "applicationInsights"): roles.APPLICATION_INSIGHTS,
    ("workspace-storage-rbac.bicep", "storageAccount"): roles.WORKSPACE_STORAGE,
    ("aml.bicep", "workspace"): roles.WORKSPACE_SCOPE,
    ("events-topic.bicep", "topic"): roles.EVENTS_TOPIC,
}
"""(file, scope symbol) -> scope kind; no `scope:` in a subscription-scoped file is the subscription."""


def _blocks(text: str) -> list[str]:
    """Each role assignment resource, from its declaration to its closing brace at column 0."""
    found = []
    for match in re.finditer(r"^resource \w+ 'Microsoft\.Authorization/roleAssignments@[^']+'.*$", text, re.M):
        end = text.index("\n}\n", match.end())
        found.append(text[match.start() : end])
    return found


def _role(text: str, block: str) -> str:
    built_in = re.search(
        r"roleDefinitionId: subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions', (\w+)\)", block
    )
    if built_in:
        var = re.search(rf"^var {built_in.group(1)} = '([0-9a-f-]{{36}})' // (.+)$", text, re.M)
        assert var, built_in.group(1)
        guid, name = var.group(1), var.group(2).strip()
        assert roles.ROLE_IDS.get(name) == guid, f"{name}: roles.ROLE_IDS says {roles.ROLE_IDS.get(name)}, not {guid}"
        return name
    custom = re.search(r"roleDefinitionId: (\w+)\.id$", block, re.M)
    assert custom, block
    definition = text[text.index(f"resource {custom.group(1)} 'Microsoft.Authorization/roleDefinitions@") :]
    name = re.search(r"roleName: '([^'(]+?) \(", definition)
    assert name, "a custom role's name starts with a fixed part"
    return name.group(1)


def template_grants() -> set[roles.Grant]:
    grants = set()
    for path in sorted(INFRA.rglob("*.bicep")):
        text = path.read_text()
        subscription_scoped = "targetScope = 'subscription'" in text
        for block in _blocks(text):
            principal = re.search(r"^\s+principalId: (\w+)$", block, re.M)
            assert principal and principal.group(1) in HOLDERS, f"{path.name}: whose principal? {block[:80]}"
            scope = re.search(r"^  scope: (\w+)$", block, re.M)
            if scope is None:
                assert subscription_scoped, f"{path.name}: an assignment without a scope in a resource group file"
                kind = roles.SUBSCRIPTION
            else:
                kind = SCOPES[(path.name, scope.group(1))]
            grants.add(roles.Grant(HOLDERS[principal.group(1)], _role(text, block), kind))
    return grants


def test_the_doctors_table_is_every_role_assignment_the_templates_make() -> None:
    bicep = template_grants()
    table = set(roles.TEMPLATE_GRANTS)
    assert bicep == table, f"only in the Bicep: {bicep - table}; only in the table: {table - bicep}"
    assert len(roles.TEMPLATE_GRANTS) == len(table)


def test_a_role_at_a_scope_counts_below_it_and_one_holding_it_counts_for_it() -> None:
    """What the doctor concludes from the table: the app's Blob Data Owner on the account covers a container's
    Blob Data Contributor; the deployer's data roles on the upload container do not reach the ledger table."""
    assert roles.template_assigns(roles.APP, "Storage Blob Data Contributor", roles.UPLOAD_CONTAINER)
    assert roles.template_assigns(roles.DEPLOYER, "Storage Blob Data Contributor", roles.UPLOAD_CONTAINER)
    assert not roles.template_assigns(roles.DEPLOYER, "Storage Blob Data Contributor", roles.LEDGER_TABLE)
    assert not roles.template_assigns(roles.DEPLOYER, "AzureML Data Scientist", roles.WORKSPACE_SCOPE)
    assert roles.template_assigns(roles.APP, "AzureML Data Scientist", roles.WORKSPACE_SCOPE)


def test_listed_assignments_count_at_their_scope_and_below_only() -> None:
    sub = "/subscriptions/00000000-0000-0000-0000-000000000000"
    account = f"{sub}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st"
    container = f"{account}/blobServices/default/containers/chat-uploads"
    owner = f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{roles.ROLE_IDS['Storage Blob Data Owner']}"
    at_account = roles.Assignment(owner, account)
    assert roles.holds([at_account], "Storage Blob Data Contributor", container)
    assert not roles.holds([at_account], "Storage Blob Data Contributor", account + "2/blobServices/default")
    assert not roles.holds([roles.Assignment(owner, container)], "Storage Blob Data Contributor", account)
    assert roles.holds(
        [roles.Assignment(owner, "/providers/Microsoft.Management/managementGroups/mg")],
        "Storage Blob Data Reader",
        container,
    )
    assert roles.holds([at_account], roles.APP_READER, sub) is None, "a custom role's id is per environment"
