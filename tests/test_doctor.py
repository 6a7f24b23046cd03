"""`chatft doctor` on a deployment it cannot reach: real Azurite for storage; fakes at the network
boundary for Azure ML (tests/fake_aml.py) and Event Grid management, which return the
management SDK's own models, deserialized from REST-shaped JSON (azure-mgmt-eventgrid's
`SystemTopic`, `EventSubscription`, `EventSubscriptionFullUrl`)."""

from __future__ import annotations

import base64
import json
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

from shared import cli
from shared.azure.azureml.client import AzureMLWorkspace
from shared.doctor_command import DoctorSetupError, as_caller, azd_env, parse_dotenv
from shared.flows.doctor import DoctorContext, run_doctor
from shared.settings import Settings
from tests.fake_aml import PHI3_TAGS, FakeRegistryClient, FakeWorkspaceClient, model
from tests.fake_monitor import FakeMetricsClient

SUB = "00000000-0000-0000-0000-000000000000"
WS_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-chatft/providers/Microsoft.MachineLearningServices/workspaces/ws-chatft"
)
SECRET = "s3cr3t-function-key"


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
        token = jwt(oid="11111111-2222-3333-4444-555555555555", tid="tenant-1", upn="dev@contoso.com")
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
    import shared.doctor_command

    monkeypatch.setattr(shared.doctor_command, "build_context", lambda env: context(deployment))
    settings_file = deployment.env  # any mapping will do: build_context is replaced
    monkeypatch.setattr(shared.doctor_command, "doctor_env", lambda *a: dict(settings_file))
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


def test_a_caller_storage_refuses_gets_the_role_on_just_that_container_and_table(deployment, azurite) -> None:
    """Azurite answers 403 (AuthorizationFailure) to a wrong key, as Azure Storage does to a caller without a data
    role: the fix is the role `azd up` gives the person who deploys, on the container or table that refused."""
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    wrong = azurite.connection_string.replace(
        azurite.connection_string.split("AccountKey=")[1].split(";")[0], base64.b64encode(b"x" * 64).decode()
    )
    deployment.blob_service = BlobServiceClient.from_connection_string(wrong)
    deployment.tables = TableServiceClient.from_connection_string(wrong)
    checks = by_name(deployment)
    containers, ledger = checks["storage containers"], checks["ledger table"]
    upload = deployment.env["UPLOAD_CONTAINER"]
    assert not containers.ok and '--role "Storage Blob Data Contributor"' in containers.fix
    assert f'--query id -o tsv)/blobServices/default/containers/{upload}"' in containers.fix
    assert not ledger.ok and '--role "Storage Table Data Contributor"' in ledger.fix
    assert '--query id -o tsv)/tableServices/default/tables/ledgerdoctor"' in ledger.fix


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
            "resourceId": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/sites/func/functions/job_events"
        },
    }
    assert by_name(deployment)["event grid: job events"].ok


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
