"""Two azd environments on one existing Azure ML workspace (issue 18, B11), and what `chatft doctor` reads from
azd's outputs (B12). The templates are read as text (no Bicep compiler here; tests/test_infra.py explains).

- The datastore is named per environment: a fixed name let the second environment re-point the first one's.
  Datastore names: lowercase letters, digits and underscores, at most 255 characters (Azure resource name rules,
  MicrosoftDocs/azure-docs articles/azure-resource-manager/management/resource-name-rules.md,
  "Microsoft.MachineLearningServices").
- The workspace's Event Grid system topic is reused when it exists: "Only one Azure Event Grid system topic is
  allowed per source" (learn.microsoft.com/azure/event-grid/system-topics).
- The job-events subscription on that shared topic is named per function app: event subscription names are 3-64
  letters, digits and hyphens (resource-name-rules.md, "Microsoft.EventGrid").
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.flows import doctor
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MAIN = (INFRA / "main.bicep").read_text()
AML = (INFRA / "app" / "aml.bicep").read_text()
TOPIC = (
    (INFRA / "app" / "workspace-topic.bicep").read_text() if (INFRA / "app" / "workspace-topic.bicep").exists() else ""
)
SUBSCRIPTIONS = (INFRA / "app" / "event-subscriptions.bicep").read_text()
JOB_EVENTS = (INFRA / "app" / "job-events-subscription.bicep").read_text()
PARAMETERS = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]

TOKEN = "abcdefghijklm"
"""What `toLower(uniqueString(...))` gives: 13 lowercase letters and digits."""


def _bicep_interpolate(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)


def test_the_datastore_is_named_per_environment_within_the_datastore_name_rules() -> None:
    match = re.search(r"^var datastoreName = '([^']*)'$", MAIN, re.MULTILINE)
    assert match and "${resourceToken}" in match.group(1), "a fixed datastore name is shared by every environment"
    assert re.search(r"^var resourceToken = toLower\(uniqueString\(subscription\(\)\.id, environmentName", MAIN, re.M)
    name = _bicep_interpolate(match.group(1), {"resourceToken": TOKEN})
    assert re.fullmatch(r"[a-z0-9_]{1,255}", name), name
    other = _bicep_interpolate(match.group(1), {"resourceToken": "zyxwvutsrqpon"})
    assert other != name
    # The app reads the name it was given (AML_DATASTORE), and the datastore is created under it.
    assert re.search(r"^\s*AML_DATASTORE: datastoreName$", MAIN, re.MULTILINE)
    assert re.search(r"^\s*datastoreName: datastoreName$", MAIN, re.MULTILINE)
    assert re.search(r"module datastore [^{]+\{\s*name: [^\n]+\n\s*params: \{\s*name: datastoreName", AML)
    assert Settings.from_env({"AML_DATASTORE": name}).aml_datastore == name


def test_an_existing_workspace_topic_is_reused_not_created_again() -> None:
    assert PARAMETERS["existingWorkspaceSystemTopicName"] == {"value": "${CHATFT_EXISTING_WORKSPACE_SYSTEM_TOPIC=}"}
    assert re.search(r"^param existingWorkspaceSystemTopicName string = ''$", MAIN, re.MULTILINE)
    module = MAIN[MAIN.index("module workspaceTopic ") :]
    module = module[: module.index("\n}\n")]
    assert "'app/workspace-topic.bicep'" in module
    assert "existingName: createWorkspace ? '' : existingWorkspaceSystemTopicName" in module, (
        "a workspace this environment creates has no topic yet"
    )
    assert "module created 'br/public:avm/res/event-grid/system-topic:" in TOPIC
    assert "= if (empty(existingName))" in TOPIC
    assert "existing = if (!empty(existingName))" in TOPIC
    assert "topicType: 'Microsoft.MachineLearningServices.Workspaces'" in TOPIC and "source: workspaceId" in TOPIC
    # main.bicep keeps reading the same two outputs, whichever way the topic came
    assert "output name string = empty(existingName) ? created!.outputs.name : reused!.name" in TOPIC
    assert re.search(r"^output systemAssignedMIPrincipalId string = empty\(existingName\)$", TOPIC, re.MULTILINE)
    assert "workspaceTopicPrincipalId: workspaceTopic.outputs.?systemAssignedMIPrincipalId ?? ''" in MAIN
    assert "output WORKSPACE_SYSTEM_TOPIC_NAME string = workspaceTopic.outputs.name" in MAIN
    assert "tags: tags" in module and f"'{doctor.ENV_TAG}': environmentName" in MAIN, "the doctor reads the tag"


def _job_subscription_name(host: str) -> str:
    """event-subscriptions.bicep's expression, evaluated the way Bicep's split and take do."""
    match = re.search(r"^var jobEventsSubscriptionName = (.+)$", SUBSCRIPTIONS, re.MULTILINE)
    assert match, "the job-events subscription needs a per-app name"
    assert match.group(1) == "'chatft-jobs-${take(split(functionAppHostName, '.')[0], 52)}'"
    return "chatft-jobs-" + host.split(".")[0][:52]


def test_each_app_has_its_own_job_events_subscription_on_a_shared_topic() -> None:
    names = {
        _job_subscription_name(host)
        for host in (
            "func-chatft-abcdefghijklm.azurewebsites.net",
            "func-chatft-zyxwvutsrqpon.azurewebsites.net",
            # Flex Consumption's unique default host names, and a 60-character custom app name
            "func-chatft-abcdefghijklm-b4c8dkfygxhxhyfd.eastus-01.azurewebsites.net",
            "f" * 60 + ".azurewebsites.net",
        )
    }
    assert len(names) == 4
    assert all(re.fullmatch(r"[A-Za-z0-9-]{3,64}", n) for n in names), names
    assert (
        "name: subscriptionName" in JOB_EVENTS
        and "'chatft-job-events'" not in JOB_EVENTS.split("resource jobEvents")[1]
    )
    assert "subscriptionName: jobEventsSubscriptionName" in SUBSCRIPTIONS


def test_azd_keeps_who_the_template_gave_roles_to_for_the_doctor() -> None:
    assert f"output {doctor.DEPLOYER_OUTPUT} string = principalId" in MAIN
    assert f"output {doctor.APP_OUTPUT} string = appIdentity.outputs.principalId" in MAIN
