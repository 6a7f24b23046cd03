"""`chatft doctor` on a deployment it cannot reach: real Azurite for storage; fakes at the network
boundary for Azure ML (tests/fake_aml.py) and Event Grid management, which return the
management SDK's own models, deserialized from REST-shaped JSON (azure-mgmt-eventgrid's
`SystemTopic`, `EventSubscription`, `EventSubscriptionFullUrl`)."""

from __future__ import annotations

import base64
import json
import os
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
from azure.ai.ml.entities import AzureBlobDatastore, Usage
from azure.ai.ml.entities._compute._usage import UsageName
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.mgmt.eventgrid.models import EventSubscription, EventSubscriptionFullUrl, SystemTopic
from typer.testing import CliRunner

from shared.azure.arm import ArmReads
from shared.azure.azureml.client import AzureMLWorkspace
from shared.entry.cli import app as cli
from shared.entry.cli.commands.doctor import DoctorSetupError, as_caller, azd_env, parse_dotenv
from shared.flows.doctor import DoctorContext, run_doctor
from shared.settings import IDENTITY_SETTINGS, Settings, setting_names
from tests.aml_rest import RestResponse
from tests.arm_rest import ArmService
from tests.fake_aml import PHI3_TAGS, FakeRegistryClient, FakeWorkspaceClient, model
from tests.fake_monitor import FakeMetricsClient

SUB = "00000000-0000-0000-0000-000000000000"
WS_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-chatft/providers/Microsoft.MachineLearningServices/workspaces/ws-chatft"
)
SECRET = "s3cr3t-function-key"
ME = "11111111-2222-3333-4444-555555555555"
"""The object id in the test credential's token."""
APP_ID = "99999999-8888-7777-6666-555555555555"
STORAGE_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-chatft/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
)


def jwt(**claims: Any) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


class Credential:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self.fail:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")
        token = jwt(oid=ME, tid="tenant-1", upn="dev@contoso.com")
        return AccessToken(token, 2_000_000_000)


def storage_topic(account: str) -> SystemTopic:
    return SystemTopic.deserialize(
        {
            "id": f"/subscriptions/{SUB}/resourceGroups/rg-chatft/providers/Microsoft.EventGrid/systemTopics/st-uploads",
            "name": "st-uploads",
            "location": "eastus",
            "properties": {
                "source": f"/subscriptions/{SUB}/resourceGroups/rg-chatft/providers/Microsoft.Storage/storageAccounts/{account}",
                "topicType": "Microsoft.Storage.StorageAccounts",
                "provisioningState": "Succeeded",
            },
        }
    )


def workspace_topic() -> SystemTopic:
    return SystemTopic.deserialize(
        {
            "id": f"/subscriptions/{SUB}/resourceGroups/rg-chatft/providers/Microsoft.EventGrid/systemTopics/st-jobs",
            "name": "st-jobs",
            "location": "eastus",
            "properties": {
                "source": WS_ID,
                "topicType": "Microsoft.MachineLearningServices.Workspaces",
                "provisioningState": "Succeeded",
            },
        }
    )


def webhook_subscription(name: str, function: str, path: str, event_types: list[str], **filters: Any) -> dict:
    """As the service returns it: the webhook URL is write-only, only its base comes back."""
    return {
        "id": f"/subscriptions/{SUB}/.../eventSubscriptions/{name}",
        "name": name,
        "properties": {
            "provisioningState": filters.pop("state", "Succeeded"),
            "destination": {
                "endpointType": "WebHook",
                "properties": {"endpointBaseUrl": f"https://func-chatft.azurewebsites.net{path}"},
            },
            "filter": {"includedEventTypes": event_types, **filters},
            "deadLetterDestination": {
                "endpointType": "StorageBlob",
                "properties": {"resourceId": "/subscriptions/x/st", "blobContainerName": "deadletter"},
            },
        },
        "_full_url": f"https://func-chatft.azurewebsites.net{path}?functionName={function}&code={SECRET}",
    }


class FakeEventGrid:
    """azure-mgmt-eventgrid's EventGridManagementClient: system_topics and their subscriptions."""

    def __init__(self, topics: dict[str, tuple[SystemTopic, list[dict]]]) -> None:
        self.topics = topics
        outer = self

        class SystemTopics:
            def list_by_subscription(self, filter=None, top=None, **kw):
                return [topic for topic, _ in outer.topics.values()]

        class Subscriptions:
            def list_by_system_topic(self, resource_group_name, system_topic_name, **kw):
                return [EventSubscription.deserialize(s) for s in outer.topics[system_topic_name][1]]

            def get_full_url(self, resource_group_name, system_topic_name, event_subscription_name, **kw):
                [found] = [s for s in outer.topics[system_topic_name][1] if s["name"] == event_subscription_name]
                return EventSubscriptionFullUrl(endpoint_url=found["_full_url"])

        self.system_topics = SystemTopics()
        self.system_topic_event_subscriptions = Subscriptions()


def good_routes(account: str, upload_container: str) -> dict:
    return {
        "st-uploads": (
            storage_topic(account),
            [
                webhook_subscription(
                    "chatft-uploads",
                    "Host.Functions.ingest_upload",
                    "/runtime/webhooks/blobs",
                    ["Microsoft.Storage.BlobCreated"],
                    subjectBeginsWith=f"/blobServices/default/containers/{upload_container}/",
                    subjectEndsWith=".jsonl",
                )
            ],
        ),
        "st-jobs": (
            workspace_topic(),
            [
                webhook_subscription(
                    "chatft-jobs",
                    "job_events",
                    "/runtime/webhooks/EventGrid",
                    [
                        "Microsoft.MachineLearningServices.RunCompleted",
                        "Microsoft.MachineLearningServices.RunStatusChanged",
                    ],
                )
            ],
        ),
    }


def deployed_app_settings(env: dict[str, str]) -> dict[str, str]:
    """What the template gives the app (chatft's settings and the host's, processor.bicep), values abridged."""
    chatft = {k: v for k, v in env.items() if k in {*setting_names(), *IDENTITY_SETTINGS}}
    host = {
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__blobServiceUri": "https://st.blob.core.windows.net/",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=x;Authorization=AAD",
        "CHATFT_STORAGE__credential": "managedidentity",
        "AZURE_CLIENT_ID": "client",
    }
    return {**chatft, **host}


class FakeDatastores:
    def __init__(self, stores: list[AzureBlobDatastore]) -> None:
        self.stores = {s.name: s for s in stores}

    def get(self, name: str, **kw: Any) -> AzureBlobDatastore:
        if name not in self.stores:
            raise ResourceNotFoundError(message=f"datastore {name} not found")
        return self.stores[name]


@pytest.fixture
def deployment(storage_env, blob_service, azurite):
    """A deployment wired right; each test breaks one thing."""
    from azure.data.tables import TableServiceClient

    env = {
        **storage_env,
        "ML_BACKEND": "azure",
        "AML_SUBSCRIPTION_ID": SUB,
        "AML_RESOURCE_GROUP": "rg-chatft",
        "AML_WORKSPACE": "ws-chatft",
        "LEDGER_TABLE": "ledgerdoctor",
        # azd's outputs for the environment (infra/main.bicep), as `chatft doctor --env` reads them
        "AZURE_ENV_NAME": "dev",
        "RESOURCE_GROUP": "rg-chatft",
        "AZURE_FUNCTION_APP_NAME": "func-chatft",
        "SERVICE_CHATFT_BASE_URL": "https://func-chatft.azurewebsites.net",
        "AZURE_STORAGE_ACCOUNT_ID": STORAGE_ID,
        "DEPLOYER_PRINCIPAL_ID": ME,
        "APP_PRINCIPAL_ID": APP_ID,
    }
    for container in (env["UPLOAD_CONTAINER"], env["PREPARED_CONTAINER"]):
        blob_service.create_container(container)
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    tables.create_table_if_not_exists("ledgerdoctor")
    settings = Settings.from_env(env)
    live_tags = {k: v for k, v in PHI3_TAGS.items() if not k.startswith("Finetune")}
    registry = FakeRegistryClient([model(tags=live_tags)])
    ws = FakeWorkspaceClient()
    ws.datastores = FakeDatastores(
        [
            AzureBlobDatastore(
                name="chatft_prepared", account_name="devstoreaccount1", container_name=env["PREPARED_CONTAINER"]
            )
        ]
    )
    ws.compute.list_usage = lambda **kw: [
        Usage(name=UsageName(value="standardNCADSA100v4Family"), current_value=0, limit=96, unit="Count")
    ]
    ws.compute._sizes = [
        *ws.compute._sizes,
    ]
    adapter = AzureMLWorkspace(
        settings, workspace_client=ws, registry_client=registry, today=lambda: date(2026, 11, 22)
    )
    parts = SimpleNamespace(
        env=env,
        settings=settings,
        credential=Credential(),
        blob_service=blob_service,
        tables=tables,
        adapter=adapter,
        ws=ws,
        registry=registry,
        eventgrid=FakeEventGrid(good_routes("devstoreaccount1", env["UPLOAD_CONTAINER"])),
        metrics=FakeMetricsClient(),
        arm=ArmService(SUB, sites={"rg-chatft/func-chatft": deployed_app_settings(env)}),
    )
    yield parts
    tables.delete_table("ledgerdoctor")


def context(p: SimpleNamespace) -> DoctorContext:
    from shared.azure.metrics import AzureMonitorUsage

    return DoctorContext(
        p.settings,
        p.env,
        p.credential,
        lambda: p.blob_service,
        lambda: p.tables,
        lambda: p.adapter,
        lambda: p.eventgrid,
        lambda: AzureMonitorUsage(region=lambda: "eastus", credential_factory=object, client_factory=p.metrics.factory),
        lambda: ArmReads(p.credential, SUB, transport=p.arm),
    )


def by_name(p: SimpleNamespace) -> dict[str, Any]:
    return {c.name: c for c in run_doctor(context(p))}


def test_a_deployment_wired_right_passes_every_check(deployment) -> None:
    checks = run_doctor(context(deployment))
    assert [c.name for c in checks if not c.ok] == []
    names = [c.name for c in checks]
    assert names[:4] == ["identity", "storage containers", "ledger table", "workspace"]
    assert {"foundation model", "compute quota", "datastore", "event grid: uploads", "event grid: job events"} <= set(
        names
    )
    assert "dev@contoso.com" in checks[0].detail and "11111111-2222-3333-4444-555555555555" in checks[0].detail
    assert all(SECRET not in c.detail and SECRET not in (c.fix or "") for c in checks)


def test_the_cli_prints_one_line_per_check_and_exits_0_only_when_all_pass(deployment, monkeypatch) -> None:
    import shared.entry.cli.commands.doctor

    monkeypatch.setattr(shared.entry.cli.commands.doctor, "build_context", lambda env: context(deployment))
    settings_file = deployment.env  # any mapping will do: build_context is replaced
    monkeypatch.setattr(shared.entry.cli.commands.doctor, "doctor_env", lambda *a: dict(settings_file))
    result = CliRunner().invoke(cli.app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert result.output.count("✓") == len(run_doctor(context(deployment))) and "✗" not in result.output
    deployment.blob_service.delete_container(deployment.env["UPLOAD_CONTAINER"])
    result = CliRunner().invoke(cli.app, ["doctor"])
    assert (
        result.exit_code == 1
        and "✗ storage containers" in result.output
        and "fix: create the containers" in result.output
    )


def test_no_credential_names_the_fix(deployment) -> None:
    deployment.credential = Credential(fail=True)
    check = by_name(deployment)["identity"]
    assert not check.ok and "az login" in check.fix


def test_no_sign_in_is_said_once_and_the_checks_that_need_a_token_are_not_run(deployment, monkeypatch) -> None:
    """A real DefaultAzureCredential narrowed to EnvironmentCredential (AZURE_TOKEN_CREDENTIALS, azure-identity
    1.27 _internal/utils.py) with nothing configured: its ClientAuthenticationError (identity/_credentials/
    chained.py) is one line, once; Azurite (a connection string: no token) is still checked."""
    from azure.identity import DefaultAzureCredential

    for name in [k for k in os.environ if k.startswith(("AZURE_", "IDENTITY_", "MSI_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    deployment.credential = DefaultAzureCredential()
    checks = run_doctor(context(deployment))
    failed = [c for c in checks if not c.ok]
    assert [c.name for c in failed] == ["identity"], failed
    assert failed[0].detail.startswith("not signed in to Azure") and "\n" not in failed[0].detail
    assert failed[0].fix.startswith("run `az login`") and "DefaultAzureCredential" not in failed[0].detail
    assert [c.name for c in checks] == ["identity", "storage containers", "ledger table", "guards"]


def test_missing_workspace_settings_are_named_never_the_sdks_text(deployment) -> None:
    """azure-ai-ml's MLClient refuses an empty workspace name before any request with "Please provide a
    workspace name or use a MLClient with a workspace name set." (ValidationException,
    azure/ai/ml/operations/_workspace_operations_base.py): the doctor names the setting instead, and the
    checks that need the workspace wait for it."""
    env = {k: v for k, v in deployment.env.items() if k != "AML_WORKSPACE"}
    deployment.settings = Settings.from_env(env)
    deployment.adapter = AzureMLWorkspace(deployment.settings, credential_factory=lambda: deployment.credential)
    checks = by_name(deployment)
    check = checks["workspace"]
    assert not check.ok and check.detail == "AML_WORKSPACE not set (ML_BACKEND=azure)", check
    assert "AML_WORKSPACE" in check.fix and "azd env get-values" in check.fix
    assert not any("Please provide" in c.detail or c.detail.startswith(" :") for c in checks.values())
    assert "janitor metrics" not in checks and "event grid: job events" not in checks


def refused_by_storage(deployment, azurite) -> None:
    """Azurite answers 403 (AuthorizationFailure) to a wrong key, as Azure Storage does to a caller without a
    data role (or whose role is not applied yet)."""
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    wrong = azurite.connection_string.replace(
        azurite.connection_string.split("AccountKey=")[1].split(";")[0], base64.b64encode(b"x" * 64).decode()
    )
    deployment.blob_service = BlobServiceClient.from_connection_string(wrong)
    deployment.tables = TableServiceClient.from_connection_string(wrong)


def storage_fixes(deployment) -> tuple[Any, Any]:
    checks = by_name(deployment)
    return checks["storage containers"], checks["ledger table"]


def test_someone_the_template_gave_no_role_gets_the_role_on_just_that_container_and_table(deployment, azurite) -> None:
    """A colleague (not the principal `azd provision` ran as, DEPLOYER_PRINCIPAL_ID) whose role assignments hold
    nothing there: the role is really missing, so the fix creates it on the container or table that refused."""
    refused_by_storage(deployment, azurite)
    deployment.env["DEPLOYER_PRINCIPAL_ID"] = "someone-else"
    containers, ledger = storage_fixes(deployment)
    upload = deployment.env["UPLOAD_CONTAINER"]
    assert not containers.ok and '--role "Storage Blob Data Contributor"' in containers.fix
    assert f'--query id -o tsv)/blobServices/default/containers/{upload}"' in containers.fix
    assert not ledger.ok and '--role "Storage Table Data Contributor"' in ledger.fix
    assert '--query id -o tsv)/tableServices/default/tables/ledgerdoctor"' in ledger.fix


def test_right_after_azd_up_a_role_the_template_assigned_means_wait_not_create(deployment, azurite) -> None:
    """The deployer's assignments already hold the roles (ARM lists them; paged by nextLink, which the test
    service forces with two per page), but storage still refuses: Azure applies a new assignment within up to
    10 minutes (learn.microsoft.com/azure/role-based-access-control/troubleshooting). A hand-made
    `az role assignment create` of the same (principal, role, scope) would make the next `azd provision` fail
    with RoleAssignmentExists, so the fix is to wait and run the doctor again."""
    from shared.domain.roles import ROLE_IDS

    refused_by_storage(deployment, azurite)
    arm, upload = deployment.arm, deployment.env["UPLOAD_CONTAINER"]
    arm.assign(ME, ROLE_IDS["Storage Blob Data Reader"], f"/subscriptions/{SUB}")  # not enough to write
    arm.assign(ME, ROLE_IDS["Storage Blob Data Contributor"], f"{STORAGE_ID}/blobServices/default/containers/{upload}")
    arm.assign(ME, ROLE_IDS["Storage Blob Data Contributor"], f"{STORAGE_ID}/blobServices/default/containers/other")
    arm.assign(
        ME, ROLE_IDS["Storage Table Data Contributor"], f"{STORAGE_ID}/tableServices/default/tables/ledgerdoctor"
    )
    containers, ledger = storage_fixes(deployment)
    for check in (containers, ledger):
        assert not check.ok and "wait" in check.fix and "10 minutes" in check.fix, check.fix
        assert "az role assignment create" not in check.fix.replace("not `az role assignment create`", "")
    listed = [r for r in arm.requests if r[1].endswith("/roleAssignments")]
    assert listed[0][2]["$filter"] == f"principalId eq '{ME}'" and len(listed) == 2  # two pages, listed once


def test_a_role_the_template_assigns_but_that_is_missing_means_azd_provision(deployment, azurite) -> None:
    """The deployer, whose assignments hold no such role (a failed or older provision): `azd provision` makes it
    (with the name it will keep using), never a hand-made one."""
    refused_by_storage(deployment, azurite)
    containers, ledger = storage_fixes(deployment)
    for check in (containers, ledger):
        assert not check.ok and "run `azd provision`" in check.fix and "RoleAssignmentExists" in check.fix
        assert "--assignee-object-id" not in check.fix


def test_when_assignments_cannot_be_read_a_template_role_still_never_gets_a_create(deployment, azurite) -> None:
    """Listing role assignments needs Microsoft.Authorization/roleAssignments/read; without it (403
    AuthorizationFailed) the doctor still knows from the template's table that the role is the template's."""
    refused_by_storage(deployment, azurite)
    deployment.arm.refuse.add("roleAssignments")
    containers, ledger = storage_fixes(deployment)
    for check in (containers, ledger):
        assert not check.ok and "wait" in check.fix and "azd provision" in check.fix
        assert "--assignee-object-id" not in check.fix
    # the same caller with settings that do not say who provisioned (no azd outputs): both ways, said once
    del deployment.env["DEPLOYER_PRINCIPAL_ID"], deployment.env["APP_PRINCIPAL_ID"]
    containers, _ = storage_fixes(deployment)
    assert (
        containers.fix.startswith("if `azd provision` ran as you") and "otherwise az role assignment" in containers.fix
    )


def test_the_app_identity_refused_by_the_workspace_waits_for_the_role_the_template_gives_it(deployment) -> None:
    """Run as the function app's identity (APP_PRINCIPAL_ID), a 403 from the workspace is the AzureML Data
    Scientist role aml.bicep assigns it: no create; for the deployer (not given that role) it is a create."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    def refuse(name: str, **kw: Any) -> Any:
        """What the generated WorkspacesOperations.get raises for a 403 (azure/ai/ml/_restclient/arm_ml_service/
        operations/_operations.py: 403 is not in its error_map, so `HttpResponseError(response=...,
        error_format=ARMErrorFormat)`)."""
        body = {"error": {"code": "AuthorizationFailed", "message": "no read on the workspace"}}
        request = HttpRequest("GET", f"https://management.azure.com{WS_ID}")
        response = RestResponse(request, 403, json.dumps(body).encode(), {"Content-Type": "application/json"})
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)

    deployment.ws.workspaces.get = refuse
    deployment.env["APP_PRINCIPAL_ID"] = ME
    deployment.env["DEPLOYER_PRINCIPAL_ID"] = "someone-else"
    check = by_name(deployment)["workspace"]
    assert not check.ok and "azd provision" in check.fix and "--assignee-object-id" not in check.fix
    deployment.env["APP_PRINCIPAL_ID"], deployment.env["DEPLOYER_PRINCIPAL_ID"] = APP_ID, ME
    check = by_name(deployment)["workspace"]
    assert '--role "AzureML Data Scientist"' in check.fix and WS_ID in check.fix


def test_a_missing_ledger_table(deployment) -> None:
    deployment.tables.delete_table("ledgerdoctor")
    check = by_name(deployment)["ledger table"]
    assert not check.ok and "create the table ledgerdoctor" in check.fix
    deployment.tables.create_table_if_not_exists("ledgerdoctor")


def test_a_retired_foundation_model_fails_naming_the_setting(deployment) -> None:
    name = deployment.settings.finetune_model
    deployment.registry.models._models[name] = model(name, tags=PHI3_TAGS)  # Phi-3's tags: fine-tuning retired
    check = by_name(deployment)["foundation model and compute"]
    assert not check.ok and "FINETUNE_MODEL" in check.fix


def test_not_enough_quota(deployment) -> None:
    deployment.ws.compute.list_usage = lambda **kw: [
        Usage(name=UsageName(value="standardNCADSA100v4Family"), current_value=90, limit=96, unit="Count")
    ]
    deployment.ws.compute._sizes = [
        s
        if s.name != "Standard_NC24ads_A100_v4"
        else type(s)(name=s.name, gpus=1, family="standardNCADSA100v4Family", v_cp_us=24)
        for s in deployment.ws.compute._sizes
    ]
    check = by_name(deployment)["compute quota"]
    assert not check.ok and "needs 24" in check.detail and "6 free" in check.detail and "quota" in check.fix


@pytest.mark.parametrize(
    ("store", "problem"),
    [
        (None, "does not exist"),
        (
            AzureBlobDatastore(name="chatft_prepared", account_name="devstoreaccount1", container_name="elsewhere"),
            "not prep-",
        ),
        (AzureBlobDatastore(name="chatft_prepared", account_name="other", container_name="PREPARED"), "account other"),
    ],
)
def test_a_datastore_that_is_missing_or_points_elsewhere(deployment, store, problem) -> None:
    if store is not None and store.container_name == "PREPARED":
        store.container_name = deployment.env["PREPARED_CONTAINER"]
    deployment.ws.datastores = FakeDatastores([store] if store else [])
    check = by_name(deployment)["datastore"]
    assert not check.ok and problem in check.detail and "az ml datastore create" in check.fix


def test_no_upload_subscription(deployment) -> None:
    del deployment.eventgrid.topics["st-uploads"]
    check = by_name(deployment)["event grid: uploads"]
    assert not check.ok and "no Event Grid subscription" in check.detail and "postdeploy" in check.fix


def test_a_job_subscription_without_run_status_changed(deployment) -> None:
    _, subs = deployment.eventgrid.topics["st-jobs"]
    subs[0]["properties"]["filter"]["includedEventTypes"] = ["Microsoft.MachineLearningServices.RunCompleted"]
    check = by_name(deployment)["event grid: job events"]
    assert not check.ok and "RunStatusChanged" in check.detail


def test_an_upload_subscription_to_the_wrong_function_or_container(deployment) -> None:
    _, subs = deployment.eventgrid.topics["st-uploads"]
    subs[0]["_full_url"] = subs[0]["_full_url"].replace("ingest_upload", "other_function")
    check = by_name(deployment)["event grid: uploads"]
    assert not check.ok and "not the ingest_upload function" in check.detail and SECRET not in check.detail
    subs[0]["_full_url"] = subs[0]["_full_url"].replace("other_function", "ingest_upload")
    subs[0]["properties"]["filter"]["subjectBeginsWith"] = "/blobServices/default/containers/another/"
    check = by_name(deployment)["event grid: uploads"]
    assert not check.ok and "another" in check.detail


def test_an_azure_function_destination_counts(deployment) -> None:
    _, subs = deployment.eventgrid.topics["st-jobs"]
    subs[0]["properties"]["destination"] = {
        "endpointType": "AzureFunction",
        "properties": {
            "resourceId": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/sites/func-chatft/functions/job_events"
        },
    }
    assert by_name(deployment)["event grid: job events"].ok
    subs[0]["properties"]["destination"]["properties"]["resourceId"] = subs[0]["properties"]["destination"][
        "properties"
    ]["resourceId"].replace("/sites/func-chatft/", "/sites/func-other/")
    check = by_name(deployment)["event grid: job events"]
    assert not check.ok and "func-other (another environment's)" in check.detail


def test_azd_environment_files(tmp_path) -> None:
    (tmp_path / ".azure" / "dev").mkdir(parents=True)
    (tmp_path / ".azure" / "config.json").write_text('{"version": 1, "defaultEnvironment": "dev"}')
    (tmp_path / ".azure" / "dev" / ".env").write_text(
        '# written by azd\nAML_WORKSPACE="ws-chatft"\nFINETUNE_OVERRIDES="{\\"num_train_epochs\\": 2}"\n'
        'CHATFT_STORAGE__credential="managedidentity"\nAZURE_CLIENT_ID="abc"\n'
    )
    env = azd_env(None, tmp_path)
    assert env["AML_WORKSPACE"] == "ws-chatft" and json.loads(env["FINETUNE_OVERRIDES"]) == {"num_train_epochs": 2}
    assert as_caller(env) == {"AML_WORKSPACE": "ws-chatft", "FINETUNE_OVERRIDES": '{"num_train_epochs": 2}'}
    with pytest.raises(DoctorSetupError, match="azd env list"):
        azd_env("prod", tmp_path)
    assert parse_dotenv("A='x y'\nexport B=1\n\nnot a line\n") == {"A": "x y", "B": "1"}


def test_an_azd_environment_gives_the_doctor_exactly_the_deployed_app_settings(tmp_path) -> None:
    """infra/main.bicep outputs the app settings as one JSON string; azd writes it to .env double-quoted
    with backslash-escaped quotes, like any string output."""
    deployed = {
        "CHATFT_STORAGE__blobServiceUri": "https://st.blob.core.windows.net/",
        "CHATFT_STORAGE__tableServiceUri": "https://st.table.core.windows.net/",
        "CHATFT_STORAGE__credential": "managedidentity",
        "AZURE_CLIENT_ID": "abc",
        "LEDGER_TABLE": "chatftledger",
        "FINETUNE_OVERRIDES": "{}",
    }
    quoted = json.dumps(json.dumps(deployed))  # "{\"A\": ...}"
    (tmp_path / ".azure" / "dev").mkdir(parents=True)
    (tmp_path / ".azure" / "dev" / ".env").write_text(f'AML_WORKSPACE="ws"\nCHATFT_APP_SETTINGS={quoted}\n')
    env = as_caller(azd_env("dev", tmp_path))
    assert env["LEDGER_TABLE"] == "chatftledger" and env["AML_WORKSPACE"] == "ws"
    assert env["CHATFT_STORAGE__blobServiceUri"] == "https://st.blob.core.windows.net/"
    assert "AZURE_CLIENT_ID" not in env and "CHATFT_STORAGE__credential" not in env  # the doctor runs as you
    (tmp_path / ".azure" / "dev" / ".env").write_text('CHATFT_APP_SETTINGS="[1"\n')
    with pytest.raises(DoctorSetupError, match="CHATFT_APP_SETTINGS"):
        azd_env("dev", tmp_path)


def other_environments_job_subscription(deployment, host: str = "func-chatft-other.azurewebsites.net") -> None:
    """A second azd environment on the same workspace: the workspace's one system topic (Event Grid allows one per
    source, learn.microsoft.com/azure/event-grid/system-topics) carries the tag of the environment that made it,
    and each environment's job-events subscription delivers to its own app."""
    topic, subs = deployment.eventgrid.topics["st-jobs"]
    topic.tags = {"azd-env-name": "prod"}
    theirs = json.loads(json.dumps(subs[0]))
    theirs["name"] = "chatft-jobs-func-chatft-other"
    theirs["_full_url"] = theirs["_full_url"].replace("func-chatft.azurewebsites.net", host)
    subs.append(theirs)


def test_the_doctor_says_which_other_environment_owns_the_workspace_topic_and_gets_its_events(deployment) -> None:
    other_environments_job_subscription(deployment)
    checks = by_name(deployment)
    assert checks["event grid: job events"].ok
    shared = checks["other azd environments"]
    assert shared.ok and "st-jobs is environment 'prod''s (tag azd-env-name)" in shared.detail
    assert "also go to func-chatft-other.azurewebsites.net" in shared.detail
    assert len(shared.detail.splitlines()) == 1


def test_another_environments_job_subscription_does_not_count_as_this_ones(deployment) -> None:
    """Before subscriptions were named per app, the last environment's hook re-pointed `chatft-job-events` to its
    own app: the doctor of the first then saw a subscription to job_events and passed."""
    other_environments_job_subscription(deployment)
    _, subs = deployment.eventgrid.topics["st-jobs"]
    del subs[0]
    check = by_name(deployment)["event grid: job events"]
    assert not check.ok and "of this app (func-chatft.azurewebsites.net)" in check.detail
    assert "chatft-jobs-func-chatft-other delivers to func-chatft-other.azurewebsites.net (another environment's)" in (
        check.detail
    )
    assert "postdeploy" in check.fix


def test_an_environment_that_shares_nothing_says_so(deployment) -> None:
    check = by_name(deployment)["other azd environments"]
    assert check.ok and "nothing environment 'dev' uses on ws-chatft is another's" in check.detail


def test_settings_an_earlier_version_left_on_the_app_are_listed_as_unused(deployment) -> None:
    """The AVM site module merges app settings, so one a newer template no longer sets stays on the app. The
    doctor reads the app's settings (ARM appsettings/list) and lists, by name only, what neither chatft
    (shared/settings.py), nor its storage connection (CHATFT_STORAGE__*), nor the host or the platform reads."""
    deployment.arm.sites["rg-chatft/func-chatft"].update(
        {
            "OLD_CHATFT_SETTING": "secret-value",
            "JANITOR_IDLE_MINUTE": "30",  # a typo: read by nothing either
            "CHATFT_STORAGE__accountName": "st",  # a connection property the host reads
            "AzureWebJobsFeatureFlags": "EnableWorkerIndexing",
            "WEBSITE_RUN_FROM_PACKAGE": "1",
            "FUNCTIONS_EXTENSION_VERSION": "~4",
        }
    )
    check = by_name(deployment)["app settings"]
    assert check.ok and "JANITOR_IDLE_MINUTE, OLD_CHATFT_SETTING" in check.detail
    assert "secret-value" not in check.detail + (check.fix or "")
    assert check.fix == (
        "az functionapp config appsettings delete -n func-chatft -g rg-chatft "
        "--setting-names JANITOR_IDLE_MINUTE OLD_CHATFT_SETTING"
    )
    listed = [r for r in deployment.arm.requests if r[1].endswith("/config/appsettings/list")]
    assert listed and listed[0][0] == "POST"


def test_the_template_settings_are_all_read(deployment) -> None:
    check = by_name(deployment)["app settings"]
    assert check.ok and check.fix is None and "read by chatft or the host" in check.detail


def test_app_settings_the_caller_may_not_read_name_the_permission(deployment) -> None:
    deployment.arm.refuse.add("appsettings")
    check = by_name(deployment)["app settings"]
    assert not check.ok and "403" in check.detail and "AuthorizationFailed" in check.detail
    assert "Microsoft.Web/sites/config/list/action" in check.fix


@pytest.mark.parametrize("status", [401, 403])
def test_metrics_refused_for_the_app_wait_for_its_custom_role_for_a_person_name_monitoring_reader(
    deployment, status
) -> None:
    """The real MetricsClient refused (401 ClientAuthenticationError, 403 HttpResponseError: tests/fake_monitor.py).
    Run as the app's identity, the role is metrics-rbac.bicep's custom one (its id is per environment, so the
    listing cannot show it): wait or `azd provision`, never a create. Run as the person who deployed (whom the
    template gives no metrics role), the built-in Monitoring Reader on the subscription."""
    deployment.metrics = FakeMetricsClient(refuse=status)
    deployment.env["APP_PRINCIPAL_ID"], deployment.env["DEPLOYER_PRINCIPAL_ID"] = ME, "someone-else"
    check = by_name(deployment)["janitor metrics"]
    assert not check.ok and "azd provision" in check.fix and "--assignee-object-id" not in check.fix
    deployment.env["APP_PRINCIPAL_ID"], deployment.env["DEPLOYER_PRINCIPAL_ID"] = APP_ID, ME
    check = by_name(deployment)["janitor metrics"]
    assert f'--role "Monitoring Reader" --scope /subscriptions/{SUB}' in check.fix


def test_a_check_whose_token_fails_says_the_fix_in_one_line(deployment) -> None:
    """The ARM token came, the storage one did not (azure-identity raises CredentialUnavailableError,
    identity/_exceptions.py, before any request): the check's line is the fix, not the credential's text."""
    from azure.identity import CredentialUnavailableError
    from azure.storage.blob import BlobServiceClient

    from shared.azure.storage import probe_blob_options

    class NoStorageToken(Credential):
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            if any("storage.azure.com" in s for s in scopes):
                raise CredentialUnavailableError("EnvironmentCredential authentication unavailable.\nVisit …")
            return super().get_token(*scopes, **kwargs)

    deployment.credential = NoStorageToken()
    url = "https://chatftnosuch.blob.core.windows.net"
    deployment.blob_service = BlobServiceClient(url, NoStorageToken(), **probe_blob_options())
    check = by_name(deployment)["storage containers"]
    assert not check.ok and check.detail == "not signed in to Azure (no login found, or it expired)", check
    assert check.fix.startswith("run `az login`")
    assert "ledger table" not in by_name(deployment), "the same account's sign-in failure is said once"
