"""Which input of chat_completion_pipeline takes the foundation model: decided by the registry model's type.

The component declares `mlflow_model_path` (type mlflow_model) and `pytorch_model_path` (type custom_model)
(azureml-assets assets/training/finetune_acft_hf_nlp/components/pipeline_components/chat_completion/spec.yaml;
tests/fixtures/chat_completion_pipeline.yaml). A registry model says which it is in its `type`: azureml-assets
publishes each system model with `publish.type` in its model.yaml (mlflow_model for Phi-3, for instance), and
azure-ai-ml's Model entity carries it as `type` (AssetTypes.MLFLOW_MODEL "mlflow_model", CUSTOM_MODEL
"custom_model"; azure/ai/ml/constants/_common.py). The REST API may spell them MLFlowModel / CustomModel
(ModelType in the same file), so both spellings are read. Any other type (triton_model, ...) cannot be fine-tuned
by this component and is refused before anything is submitted.
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import PreflightError
from .model_check import MODEL_SETTING


class ModelInput(NamedTuple):
    name: str
    """The component input the model goes to."""
    type: str
    """The asset type of that input (what azure.ai.ml.Input(type=...) is given)."""


INPUTS = {
    "mlflowmodel": ModelInput("mlflow_model_path", "mlflow_model"),
    "custommodel": ModelInput("pytorch_model_path", "custom_model"),
}


def model_input(
    model_name: str,
    model_type: str | None,
    component_inputs: set[str] | frozenset[str],
    *,
    setting: str = MODEL_SETTING,
) -> ModelInput:
    """The input for a model of `model_type`; PreflightError naming `setting` (FINETUNE_MODEL, or the metadata key
    of an upload that chose the model) if there is none."""
    spelled = str(model_type or "").strip()
    chosen = INPUTS.get(spelled.replace("_", "").lower())
    if chosen is None:
        raise PreflightError(
            f"model {model_name} is a {spelled or 'model of no type'}; chat_completion_pipeline fine-tunes only "
            "mlflow_model and custom_model models: choose one of those",
            setting,
        )
    if chosen.name not in component_inputs:
        raise PreflightError(
            f"model {model_name} is a {chosen.type}, and this chat_completion_pipeline has no {chosen.name} input "
            "to take it: choose a model of the other type",
            setting,
        )
    return chosen
