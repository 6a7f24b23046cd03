"""An endpoint's chatft_model tag is `name:version`, short whatever the resource group and workspace are called
(issue 18 item 16).

Azure limits a tag value to 256 characters ("the tag value has a limit of 256 characters": MicrosoftDocs
azure-docs articles/azure-resource-manager/management/tag-resources.md, "Limitations"). A registered model's ARM
id holds the resource group (up to 90 characters: Microsoft.Resources naming rules) and the workspace name (up to
33: `^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$`, the workspaceName pattern of the REST API), so with long names it passes
256 and the endpoint PUT is refused with a 400, which fails the deployment. The id is on the ledger row instead.
"""

from __future__ import annotations

import pytest

from shared.azure.azureml.client import AzureMLWorkspace
from shared.domain.ledger import Status
from shared.domain.tags import MAX_VALUE, MODEL_TAG, endpoint_tags, model_of, model_tag
from tests.aml_rest import AmlRestService, ml_client
from tests.deploy_flow import completed, row, send, submit, tick
from tests.test_aml_rest_contract import settings

LONG_RG = "rg-" + "r" * 87  # 90 characters, the longest a resource group name may be
LONG_WS = "w" * 33  # the longest a workspace name may be
LONG_ID = (
    f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{LONG_RG}/providers/"
    f"Microsoft.MachineLearningServices/workspaces/{LONG_WS}/models/Phi-4-ultrachat-200k-chatft/versions/823264155506"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Phi-4-chatft:12", ("Phi-4-chatft", "12")),
        (LONG_ID, ("Phi-4-ultrachat-200k-chatft", "823264155506")),
        ("azureml://registries/azureml/models/Phi-4/versions/8", ("Phi-4", "8")),
        ("", None),
        ("not a model", None),
        ("/subscriptions/x/models/m", None),
    ],
)
def test_the_model_is_read_from_either_form_of_the_tag(value, expected) -> None:
    """Endpoints tagged before carry the ARM id; new ones `name:version`. The janitor, the endpoint-action commands and
    status read both."""
    assert model_of(value) == expected


def test_the_tag_is_short_however_long_the_workspace_names_are() -> None:
    assert len(LONG_ID) > MAX_VALUE
    fitted = endpoint_tags({"chatft_managed": "true", MODEL_TAG: LONG_ID})
    assert fitted == {"chatft_managed": "true", MODEL_TAG: model_tag("Phi-4-ultrachat-200k-chatft", "823264155506")}
    assert endpoint_tags({"Chatft_Model": "m:1", "other": "x"}) == {"Chatft_Model": "m:1", "other": "x"}


def test_an_endpoint_of_a_model_in_a_long_named_workspace_is_created() -> None:
    """The real SDK over tests/aml_rest.py, whose endpoint PUT refuses a tag value over 256 characters with a 400
    (as ARM does); before, the whole ARM id went into the tag and the PUT failed."""
    service = AmlRestService()
    adapter = AzureMLWorkspace(settings(), workspace_client=ml_client(service))
    adapter.begin_create_endpoint(
        name="cft-chats-0123456789", description="d", tags={"chatft_managed": "true", MODEL_TAG: LONG_ID}
    )
    [put] = service.calls_to("PUT", r"/onlineEndpoints/cft-chats-0123456789$")
    assert put.status == 201 and put.body["tags"][MODEL_TAG] == "Phi-4-ultrachat-200k-chatft:823264155506"
    adapter.set_endpoint_tags("cft-chats-0123456789", {"chatft_keep": "true", MODEL_TAG: LONG_ID})
    [patch] = service.calls_to("PATCH", r"/onlineEndpoints/cft-chats-0123456789$")
    assert patch.body["tags"] == {"chatft_keep": "true", MODEL_TAG: "Phi-4-ultrachat-200k-chatft:823264155506"}
    assert not service.unserved


def test_the_deployed_endpoint_carries_name_and_version_and_the_ledger_the_id(aml, blob_service, storage_env) -> None:
    service, _ = aml
    job, tags = submit(blob_service, storage_env, service)
    send(completed(job, tags))
    for _ in range(5):
        if service.online_endpoints.endpoints:
            break
        tick()
    [endpoint] = service.online_endpoints.endpoints.values()
    entry = row()
    assert entry.status is Status.DEPLOYING
    d = entry.deploy
    assert endpoint.tags[MODEL_TAG] == f"{d['model_name']}:{d['model_version']}"
    assert d["model_id"].endswith(f"/models/{d['model_name']}/versions/{d['model_version']}")
    assert d["model_id"].startswith("/subscriptions/") and model_of(d["model_id"]) == model_of(endpoint.tags[MODEL_TAG])
