"""The registry's newest model specs keep fine-tuning facts in `system_metadata`, not `tags`.

Source: Azure/azureml-assets @4b41f8ccbc, assets/models/system/Phi-4/spec.yaml (version 8, migrated: `tags`
holds only model_specific_defaults) and assets/models/system/Llama-2-13b-chat/spec.yaml
(`system_metadata.deprecation.finetuneRetirementDate: '2025-06-30T00:00:00.000000Z'`). azure-ai-ml
surfaces the block as `Model._system_metadata` (entities/_assets/_artifacts/model.py `_from_rest_object`).
Was: only `tags` was read, so a migrated model had no inference size to deploy on, no fine-tuning allow
list, and a retired one passed preflight.
"""

from __future__ import annotations

import ast
from datetime import date

import pytest
from azure.ai.ml.entities import Model

import shared.entry.app_wiring
from shared.azure.azureml.client import AzureMLWorkspace
from shared.domain.finetune.compute import allowed_sizes
from shared.domain.finetune.errors import PreflightError
from shared.domain.finetune.model_check import check_model
from shared.domain.finetune.model_metadata import model_tags
from shared.domain.ledger import Status
from shared.settings import Settings
from tests.deploy_flow import completed, report, row, run_until, scoring, send, submit
from tests.fake_aml import FakeRegistryClient, FakeWorkspaceClient

TODAY = date(2026, 11, 22)
A100 = ["Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_NC96ads_A100_v4"]
H100 = ["Standard_ND96isr_H100_v5", "Standard_NC40ads_H100_v5", "Standard_NC80adis_H100_v5"]

MIGRATED_TAGS = {  # Phi-4 v8 `tags` after the migration, as a mapping (the YAML's form)
    "model_specific_defaults": {"apply_deepspeed": "true", "deepspeed_stage": 3, "num_train_epochs": 1},
}
MIGRATED_METADATA = {  # the parts of Phi-4 v8's `system_metadata` chatft reads
    "tasks": {"fineTuningTasks": ["chat-completion"], "inferenceTasks": ["chat-completion"]},
    "SKU": {
        "inferenceRecommendedSkus": [*A100, "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4", *H100],
        "finetuneRecommendedSkus": [*A100, "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4", *H100],
    },
    "supportedComputes": {
        "inferenceComputes": [*H100[::-1], *A100[::-1]],  # a different order: the cheapest must still win
        "finetuneComputes": [*A100, *H100],
    },
}
RETIRED_METADATA = {  # Llama-2-13b-chat's
    "deprecation": {
        "finetuneDeprecationDate": "2025-03-31T00:00:00.000000Z",
        "finetuneRetirementDate": "2025-06-30T00:00:00.000000Z",
    },
    "supportedComputes": {"finetuneComputes": A100},
}


def test_migrated_facts_are_read_from_system_metadata() -> None:
    tags = model_tags(MIGRATED_TAGS, MIGRATED_METADATA)
    assert allowed_sizes(tags, "finetune_compute_allow_list") == [s.lower() for s in [*A100, *H100]]
    assert allowed_sizes(tags, "inference_compute_allow_list") == [s.lower() for s in [*H100[::-1], *A100[::-1]]]
    assert "chat-completion" in tags["finetuning_tasks"]
    assert (
        ast.literal_eval(tags["model_specific_defaults"]) == MIGRATED_TAGS["model_specific_defaults"]
    )  # a Python literal


def test_a_retirement_in_system_metadata_fails_preflight() -> None:
    tags = model_tags({}, RETIRED_METADATA)
    with pytest.raises(PreflightError, match="retired on 2025-06-30") as caught:
        check_model("Llama-2-13b-chat", tags, None, TODAY)
    assert caught.value.setting == "FINETUNE_MODEL"


@pytest.mark.parametrize("metadata", [None, "not a mapping", [], {"SKU": "x"}, {"supportedComputes": {"x": 1}}])
def test_odd_system_metadata_changes_nothing(metadata) -> None:
    assert model_tags({"task": "chat-completion"}, metadata) == {"task": "chat-completion"}


def test_tags_win_over_system_metadata() -> None:
    tags = model_tags({"finetune_compute_allow_list": "['Standard_NC24ads_A100_v4']"}, MIGRATED_METADATA)
    assert allowed_sizes(tags) == ["standard_nc24ads_a100_v4"]


def migrated_model(metadata: dict) -> Model:
    return Model(
        name="Phi-4",
        version="8",
        tags=dict(MIGRATED_TAGS),
        system_metadata=metadata,
        id="azureml://registries/azureml/models/Phi-4/versions/8",
    )


def test_preflight_of_a_migrated_model_uses_its_allow_list() -> None:
    env = {"AML_SUBSCRIPTION_ID": "0" * 8, "AML_RESOURCE_GROUP": "rg", "AML_WORKSPACE": "ws-test"}
    adapter = AzureMLWorkspace(
        Settings.from_env({**env, "FINETUNE_INSTANCE_TYPE": "Standard_NC6"}),
        workspace_client=FakeWorkspaceClient(),
        registry_client=FakeRegistryClient([migrated_model(MIGRATED_METADATA)]),
        today=lambda: TODAY,
    )
    with pytest.raises(PreflightError, match="finetune_compute_allow_list") as caught:
        adapter.preflight()
    assert caught.value.setting == "FINETUNE_INSTANCE_TYPE"


def test_a_migrated_model_deploys_on_its_cheapest_recommended_size(aml, blob_service, storage_env) -> None:
    workspace, registry = aml
    name = shared.entry.app_wiring.settings().finetune_model
    registry.models._models[name] = migrated_model(MIGRATED_METADATA)
    with scoring(workspace):
        job, tags = submit(blob_service, storage_env, workspace)
        send(completed(job, tags))
        run_until(lambda: row().status is Status.LIVE)
    [doc] = workspace.online_deployments._json.values()
    assert doc["properties"]["instanceType"] == "Standard_NC24ads_A100_v4"
    assert "cheapest" in report(blob_service, storage_env)["deployment"]["instance_type_why"]


class RawRegistryModels:
    """The registry's models as azure-ai-ml really reads them: `models._get` deserializes the REST body into
    the hybrid ArmModelVersion (operations/_model_operations.py `_get_with_registry`), and `models.get` turns
    it into a Model with `Model._from_rest_object`, which drops `properties.system_metadata`."""

    def __init__(self, body: dict) -> None:
        from azure.ai.ml._restclient.arm_ml_service.models import ModelVersion as ArmModelVersion

        self._rest = ArmModelVersion._deserialize(body, [])
        self.raw_reads = 0

    def _get(self, name: str, version: str | None = None):
        self.raw_reads += 1
        return self._rest

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        return Model._from_rest_object(self._rest)


def test_system_metadata_the_sdk_drops_is_read_from_the_registrys_answer() -> None:
    body = {
        "id": "azureml://registries/azureml/models/Phi-4/versions/8",
        "name": "8",
        "properties": {
            "tags": {"model_specific_defaults": "{}"},
            "flavors": {"mlflow": {"data": {}}},
            "modelType": "mlflow_model",
            "system_metadata": MIGRATED_METADATA,
        },
        "systemData": {},
    }
    models = RawRegistryModels(body)
    assert models.get("Phi-4", label="latest")._system_metadata is None, "the SDK drops it (else this test is moot)"
    registry = FakeRegistryClient([])
    registry.models = models
    env = {"AML_SUBSCRIPTION_ID": "0" * 8, "AML_RESOURCE_GROUP": "rg", "AML_WORKSPACE": "ws-test"}
    adapter = AzureMLWorkspace(
        Settings.from_env(env), workspace_client=FakeWorkspaceClient(), registry_client=registry, today=lambda: TODAY
    )
    tags = adapter.foundation_model_tags("Phi-4")
    assert allowed_sizes(tags, "inference_compute_allow_list") == [s.lower() for s in [*H100[::-1], *A100[::-1]]]
    assert models.raw_reads == 1
