"""The Azure ML adapter against fakes of the MLClient operations that return real SDK entities.

The contract test builds the real PipelineJob from our component fixture and checks what would
be sent: inputs, outputs, settings, experiment name and tags, and the SDK's own validation.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from azure.ai.ml import load_component
from azure.ai.ml.entities import AmlCompute, PipelineJob
from azure.ai.ml.exceptions import UnexpectedKeywordError

from shared.azure.azureml.client import AzureMLWorkspace
from shared.azure.azureml.pipeline import build_finetune_pipeline
from shared.domain.finetune.compute import ComputePlan
from shared.domain.finetune.errors import PreflightError
from shared.domain.finetune.model_input import ModelInput
from shared.domain.workspace import FinetuneRequest
from shared.settings import Settings
from tests.fake_aml import (
    DEFAULT_MODEL_NAME,
    DEFAULT_MODEL_VERSION,
    FIXTURE,
    PHI3_TAGS,
    FakeRegistryClient,
    FakeWorkspaceClient,
    model,
)

# Phi-3-style tags (a model_specific_defaults entry the component lacks), fine-tuning not retired
LIVE_TAGS = {k: v for k, v in PHI3_TAGS.items() if not k.startswith("Finetune")}
DATA = {
    "train": "azureml://datastores/chatft_prepared/paths/chats/abc/train.jsonl",
    "validation": "azureml://datastores/chatft_prepared/paths/chats/abc/validation.jsonl",
    "test": "azureml://datastores/chatft_prepared/paths/chats/abc/test.jsonl",
}
TAGS = {"chatft_managed": "true", "chatft_upload": "ab" * 32, "chatft_source": "chat-uploads/chats.jsonl"}


def settings(**env: str) -> Settings:
    base = {
        "AML_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
        "AML_RESOURCE_GROUP": "rg",
        "AML_WORKSPACE": "ws-test",
        "EXPERIMENT_NAME": "chatft-tests",
    }
    return Settings.from_env({**base, **env})


def adapter(
    s: Settings | None = None,
    *,
    tags: dict | None = None,
    stage: str | None = None,
    clusters=None,
    component: Path = FIXTURE,
    model_type: str = "mlflow_model",
):
    registry = FakeRegistryClient(
        [model(tags=LIVE_TAGS if tags is None else tags, stage=stage, type=model_type)], component
    )
    ws = FakeWorkspaceClient(clusters)
    aml = AzureMLWorkspace(
        s or settings(), workspace_client=ws, registry_client=registry, today=lambda: date(2026, 11, 22)
    )
    return aml, ws, registry


def request(name: str = "chatft-chats-abababababab-a1") -> FinetuneRequest:
    return FinetuneRequest(job_name=name, data_uris=DATA, tags=TAGS, cid="abababababab")


def submitted_job(ws: FakeWorkspaceClient) -> PipelineJob:
    [call] = ws.jobs.created
    return call["job"]


def test_serverless_submission_builds_the_notebook_pipeline() -> None:
    aml, ws, registry = adapter()
    result = aml.submit_finetune(request())
    [call] = ws.jobs.created
    job: PipelineJob = call["job"]
    assert isinstance(job, PipelineJob)
    base = f"azureml://registries/azureml/models/{DEFAULT_MODEL_NAME}/versions/{DEFAULT_MODEL_VERSION}"
    assert call["experiment_name"] == "chatft-tests" and call["tags"] == {**TAGS, "chatft_base_model": base}
    assert job.name == "chatft-chats-abababababab-a1"
    assert job.settings.force_rerun is True and job.settings.continue_on_step_failure is False
    assert list(job.outputs) == ["trained_model"]
    [step] = job.jobs.values()
    inputs = {name: value._data for name, value in step.inputs.items()}
    assert inputs["mlflow_model_path"].path == base
    assert inputs["mlflow_model_path"].type == "mlflow_model"
    for split, uri in DATA.items():
        assert inputs[f"{split}_file_path"].type == "uri_file" and inputs[f"{split}_file_path"].path == uri
    for name in ("compute_model_import", "compute_preprocess", "compute_finetune", "compute_model_evaluation"):
        assert inputs[name] == "serverless"
    assert inputs["instance_type_finetune"] == "Standard_NC24ads_A100_v4"
    assert inputs["number_of_gpu_to_use_finetuning"] == 1
    assert inputs["learning_rate"] == 5e-6 and inputs["apply_lora"] == "true" and inputs["deepspeed_stage"] == "2"
    assert inputs["num_train_epochs"] == 1  # the model's tag beats chatft's default of 3
    assert "learning_rate_min" not in inputs
    as_yaml = job._to_dict()
    # the published component declares the output rw_mount; the pipeline's output inherits it
    assert as_yaml["outputs"] == {"trained_model": {"type": "mlflow_model", "mode": "rw_mount"}}
    assert as_yaml["jobs"][step.name]["outputs"] == {"mlflow_model_folder": "${{parent.outputs.trained_model}}"}
    assert "pytorch_model_folder" not in as_yaml["jobs"][step.name]["outputs"]
    assert job._validate().passed, job._validate().error_messages
    assert result.display_name == f"{DEFAULT_MODEL_NAME}-ultrachat-bs1-cosine-ds2-lora-save_limit1-seqlen-1"
    assert (
        "learning_rate_min",
        "model_specific_defaults tag",
        "not an input of the component",
    ) in result.dropped_parameters
    assert registry.models.calls == [(DEFAULT_MODEL_NAME, "latest")]
    assert registry.components.calls == [("chat_completion_pipeline", "latest")]


def test_a_custom_model_goes_to_the_pytorch_model_input() -> None:
    """chat_completion_pipeline takes an mlflow_model in `mlflow_model_path` and a custom_model in
    `pytorch_model_path` (tests/fixtures/chat_completion_pipeline.yaml, from azureml-assets
    assets/training/finetune_acft_hf_nlp/components/pipeline_components/chat_completion/spec.yaml); the registry
    model's `type` (azure-ai-ml AssetTypes.CUSTOM_MODEL) says which. The SDK validates the input types."""
    aml, ws, _ = adapter(model_type="custom_model")
    aml.submit_finetune(request())
    job = submitted_job(ws)
    [step] = job.jobs.values()
    inputs = {name: value._data for name, value in step.inputs.items() if value._data is not None}
    base = f"azureml://registries/azureml/models/{DEFAULT_MODEL_NAME}/versions/{DEFAULT_MODEL_VERSION}"
    assert inputs["pytorch_model_path"].type == "custom_model" and inputs["pytorch_model_path"].path == base
    assert "mlflow_model_path" not in inputs
    assert job._validate().passed, job._validate().error_messages


@pytest.mark.parametrize("model_type", ["MLFlowModel", "CustomModel"])
def test_the_rest_spelling_of_the_model_type_is_read_too(model_type) -> None:
    """azure-ai-ml's ModelType spells them MLFlowModel / CustomModel (constants/_common.py)."""
    aml, ws, _ = adapter(model_type=model_type)
    aml.submit_finetune(request())
    [step] = submitted_job(ws).jobs.values()
    wanted = "mlflow_model_path" if model_type == "MLFlowModel" else "pytorch_model_path"
    assert [n for n in ("mlflow_model_path", "pytorch_model_path") if step.inputs[n]._data is not None] == [wanted]


def test_a_model_of_another_type_fails_preflight_naming_the_model_setting() -> None:
    """A triton_model (AssetTypes.TRITON_MODEL) has no input in chat_completion_pipeline: refused before
    anything is submitted, in the preflight `chatft doctor` runs too."""
    aml, ws, _ = adapter(model_type="triton_model")
    with pytest.raises(PreflightError, match="triton_model") as caught:
        aml.preflight()
    assert caught.value.setting == "FINETUNE_MODEL"
    with pytest.raises(PreflightError, match="FINETUNE_MODEL"):
        aml.submit_finetune(request())
    assert ws.jobs.created == []


def test_a_component_without_the_models_input_fails_preflight(tmp_path: Path) -> None:
    text = FIXTURE.read_text()
    start = text.index("  pytorch_model_path:")
    end = text.index("  mlflow_model_path:")
    older = tmp_path / "mlflow-only.yaml"
    older.write_text(text[:start] + text[end:])
    aml, ws, _ = adapter(component=older, model_type="custom_model")
    with pytest.raises(PreflightError, match="no pytorch_model_path input") as caught:
        aml.submit_finetune(request())
    assert caught.value.setting == "FINETUNE_MODEL" and ws.jobs.created == []


def test_cluster_submission_uses_the_cluster_and_its_gpus() -> None:
    cluster = AmlCompute(name="gpu-a100x4", size="Standard_NC96ads_A100_v4", provisioning_state="Succeeded")
    aml, ws, _ = adapter(
        settings(FINETUNE_COMPUTE="gpu-a100x4", FINETUNE_OVERRIDES='{"num_train_epochs": 2}'), clusters=[cluster]
    )
    result = aml.submit_finetune(request())
    [step] = submitted_job(ws).jobs.values()
    assert step.inputs["compute_finetune"]._data == "gpu-a100x4"
    assert step.inputs["number_of_gpu_to_use_finetuning"]._data == 4
    assert step.inputs["num_train_epochs"]._data == 2
    assert "bs4" in result.display_name and result.gpus_per_node == 4


def test_compute_model_evaluation_is_passed_only_if_the_component_has_it(tmp_path: Path) -> None:
    text = FIXTURE.read_text()
    start = text.index("  compute_model_evaluation:")
    end = text.index("\n\noutputs:")
    older = tmp_path / "older.yaml"
    older.write_text(text[:start] + text[end + 1 :])
    aml, ws, _ = adapter(component=older)
    aml.submit_finetune(request())
    [step] = submitted_job(ws).jobs.values()
    assert "compute_model_evaluation" not in {k for k, v in step.inputs.items() if v._data is not None}
    assert step.inputs["compute_finetune"]._data == "serverless"


def test_unknown_parameter_names_are_impossible() -> None:
    component = load_component(source=str(FIXTURE))
    with pytest.raises(UnexpectedKeywordError):
        build_finetune_pipeline(
            component,
            model_id="azureml://registries/azureml/models/m/versions/1",
            model_input=ModelInput("mlflow_model_path", "mlflow_model"),
            data_uris=DATA,
            compute=ComputePlan("serverless", "Standard_NC24ads_A100_v4", 1),
            parameters={"warp_speed": 9},
            display_name="d",
            job_name="j",
            experiment_name="e",
            tags={},
        )
    aml, ws, _ = adapter(settings(FINETUNE_OVERRIDES='{"warp_speed": 9}'))
    result = aml.submit_finetune(request())
    assert ("warp_speed", "FINETUNE_OVERRIDES", "not an input of the component") in result.dropped_parameters
    assert len(ws.jobs.created) == 1


def test_retired_model_fails_preflight_and_submits_nothing() -> None:
    aml, ws, _ = adapter(tags=PHI3_TAGS)
    with pytest.raises(PreflightError, match="FINETUNE_MODEL"):
        aml.submit_finetune(request())
    assert ws.jobs.created == []


def test_missing_cluster_fails_preflight_naming_the_setting() -> None:
    aml, ws, _ = adapter(settings(FINETUNE_COMPUTE="gpu-missing"))
    with pytest.raises(PreflightError, match="does not exist") as caught:
        aml.submit_finetune(request())
    assert caught.value.setting == "FINETUNE_COMPUTE" and ws.jobs.created == []


def test_disallowed_cluster_size_fails_preflight() -> None:
    cluster = AmlCompute(name="old-gpu", size="Standard_NC6", provisioning_state="Succeeded")
    aml, ws, _ = adapter(settings(FINETUNE_COMPUTE="old-gpu"), clusters=[cluster])
    with pytest.raises(PreflightError, match="allow_list"):
        aml.submit_finetune(request())
    assert ws.jobs.created == []


def test_unknown_model_fails_preflight_naming_the_setting() -> None:
    """Was: the fake raised ResourceNotFoundError, which the SDK never raises for a label lookup:
    `models.get(name, label="latest")` in a registry raises azure.ai.ml's ValidationException
    (RESOURCE_NOT_FOUND), produced here by the SDK's own `_get_latest_version_from_container`
    (azure/ai/ml/_utils/_asset_utils.py), which the adapter let through as a generic failure."""
    from azure.ai.ml.exceptions import ValidationException

    aml, ws, registry = adapter(settings(FINETUNE_MODEL="No-Such-Model"))
    with pytest.raises(ValidationException):
        registry.models.get("No-Such-Model", label="latest")
    with pytest.raises(PreflightError, match="no active version") as caught:
        aml.submit_finetune(request())
    assert caught.value.setting == "FINETUNE_MODEL" and ws.jobs.created == []
    assert isinstance(caught.value.__cause__, ValidationException)


def test_a_registry_without_the_pipeline_component_fails_preflight_naming_the_setting() -> None:
    aml, ws, registry = adapter()
    registry.components.missing = True
    with pytest.raises(PreflightError, match="chat_completion_pipeline") as caught:
        aml.submit_finetune(request())
    assert caught.value.setting == "AML_REGISTRY" and ws.jobs.created == []


def test_an_existing_job_with_the_same_name_is_not_submitted_again() -> None:
    aml, ws, _ = adapter()
    aml.submit_finetune(request())
    again = aml.submit_finetune(request())
    assert again.already_existed and len(ws.jobs.created) == 1


def test_clients_and_the_sdk_are_loaded_lazily() -> None:
    """Building the adapter (as the function runtime does) imports no azure.ai.ml and makes no credential."""
    code = (
        "import sys\n"
        "from shared.azure.azureml.client import AzureMLWorkspace\n"
        "from shared.settings import Settings\n"
        "made = []\n"
        "s = Settings.from_env({'AML_SUBSCRIPTION_ID': '0' * 8 + '-0000-0000-0000-' + '0' * 12, 'AML_RESOURCE_GROUP': 'rg', 'AML_WORKSPACE': 'ws-x'})\n"
        "AzureMLWorkspace(s, credential_factory=lambda: made.append(1))\n"
        "print('azure.ai.ml' in sys.modules, made)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent
    )
    assert out.stdout.strip() == "False []"


@pytest.mark.parametrize(
    "override",
    ['{"num_train_epochs": 0}', '{"per_device_train_batch_size": 0}', '{"num_nodes_finetune": -1}'],
)
def test_an_override_outside_the_components_bounds_fails_preflight(override: str) -> None:
    """The published chat_completion_pipeline declares `min: 1` on these inputs (Azure/azureml-assets,
    assets/training/finetune_acft_hf_nlp/components/pipeline_components/chat_completion/spec.yaml),
    but neither our coercion nor the SDK's `_validate()` enforced it: 0 epochs reached the GPUs."""
    aml, ws, _ = adapter(settings(FINETUNE_OVERRIDES=override))
    with pytest.raises(PreflightError, match="must be at least 1") as caught:
        aml.submit_finetune(request())
    assert caught.value.setting == "FINETUNE_OVERRIDES" and ws.jobs.created == []


def test_the_bounds_come_from_the_component_fetched_at_run_time() -> None:
    component = load_component(source=str(FIXTURE))
    assert component.inputs["num_train_epochs"].min == 1  # what the registry's component says
    component.inputs["num_train_epochs"].min = 3
    from shared.azure.azureml.pipeline import component_input_types

    assert component_input_types(component)["num_train_epochs"].min == 3


def test_an_override_outside_the_components_enum_fails_preflight() -> None:
    """0.0.82 dropped `adamw_hf` from `optim`'s enum (it was 0.0.57's default): the enum of the
    component fetched at run time decides, not what chatft once knew."""
    aml, ws, _ = adapter(settings(FINETUNE_OVERRIDES='{"optim": "adamw_hf"}'))
    with pytest.raises(PreflightError, match="adamw_torch, adafactor") as caught:
        aml.submit_finetune(request())
    assert caught.value.setting == "FINETUNE_OVERRIDES" and ws.jobs.created == []
