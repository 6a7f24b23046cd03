"""Build the fine-tuning PipelineJob from a chat_completion_pipeline component, offline.

The component is an argument, so tests build a real PipelineJob from a YAML fixture loaded
with `azure.ai.ml.load_component`, and production passes the registry's component.
"""

from __future__ import annotations

from typing import Any

from shared.domain.finetune.compute import ComputePlan
from shared.domain.finetune.model_input import ModelInput
from shared.domain.finetune.params import InputSpec

COMPUTE_INPUTS = ("compute_model_import", "compute_preprocess", "compute_finetune", "compute_model_evaluation")
INSTANCE_TYPE_INPUTS = {
    "compute_finetune": "instance_type_finetune",
    "compute_model_evaluation": "instance_type_model_evaluation",
}
OUTPUT = "mlflow_model_folder"


def component_input_types(component: Any) -> dict[str, InputSpec]:
    """{input name: InputSpec(type, enum, min, max)} of a loaded or registry component."""

    def bound(value: Any) -> float | None:
        return float(value) if value is not None else None

    return {
        name: InputSpec(
            str(spec.type),
            list(spec.enum) if getattr(spec, "enum", None) else None,
            bound(getattr(spec, "min", None)),
            bound(getattr(spec, "max", None)),
        )
        for name, spec in component.inputs.items()
    }


def build_finetune_pipeline(
    component: Any,
    *,
    model_id: str,
    model_input: ModelInput,
    data_uris: dict[str, str],
    compute: ComputePlan,
    parameters: dict[str, Any],
    display_name: str,
    job_name: str,
    experiment_name: str,
    tags: dict[str, str],
) -> Any:
    """The notebook's pipeline: one step calling the component, returning its MLflow model folder. The model goes
    to the input its type takes (model_input.py): mlflow_model_path or pytorch_model_path."""
    from azure.ai.ml import Input, dsl

    inputs = component.inputs
    step_args: dict[str, Any] = {
        model_input.name: Input(type=model_input.type, path=model_id),
        "number_of_gpu_to_use_finetuning": compute.gpus_per_node,
        **{f"{split}_file_path": Input(type="uri_file", path=uri) for split, uri in data_uris.items()},
        **parameters,
    }
    for name in COMPUTE_INPUTS:
        if name in inputs:  # compute_model_evaluation comes and goes between component versions
            step_args[name] = compute.target
    if compute.serverless:
        for compute_input, type_input in INSTANCE_TYPE_INPUTS.items():
            if compute_input in inputs and type_input in inputs:
                step_args[type_input] = compute.vm_size

    @dsl.pipeline(name=job_name, display_name=display_name, experiment_name=experiment_name, tags=tags)
    def chatft_finetune() -> dict[str, Any]:
        step = component(**step_args)
        return {"trained_model": step.outputs[OUTPUT]}

    job = chatft_finetune()
    job.name = job_name
    job.settings.force_rerun = True
    job.settings.continue_on_step_failure = False
    return job
