"""Fine-tuning parameters: notebook defaults, then the model's tag, then the user's overrides.

Only keys that are real inputs of the pipeline component survive; everything dropped is
reported with its reason. Values are coerced to the component's input types, and flags are
the strings "true"/"false" the component's enums expect, never Python booleans.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .choices import METADATA, PARAMETERS, UploadChoices
from .choices import label as choice_label

TRAINING_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 3,
    "per_device_train_batch_size": 1,
    "per_device_eval_batch_size": 1,
    "learning_rate": 5e-6,
    "lr_scheduler_type": "cosine",
}
OPTIMISATION_DEFAULTS: dict[str, Any] = {"apply_lora": "true", "apply_deepspeed": "true", "deepspeed_stage": 2}

# Inputs chatft sets itself; an override for them would silently fight the submission logic.
RESERVED_INPUTS = frozenset(
    {
        "mlflow_model_path",
        "pytorch_model_path",
        "huggingface_id",
        "train_file_path",
        "validation_file_path",
        "test_file_path",
        "train_mltable_path",
        "validation_mltable_path",
        "test_mltable_path",
        "number_of_gpu_to_use_finetuning",
        "compute_model_import",
        "compute_preprocess",
        "compute_finetune",
        "compute_model_evaluation",
    }
)


class ParameterError(ValueError):
    """A value the user chose (FINETUNE_OVERRIDES, or an upload's choice) the component cannot take."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


UPLOAD_SOURCE = "upload"
"""The layer of one upload's choices (shared.domain.finetune.choices)."""


@dataclass
class MergedParameters:
    values: dict[str, Any]
    dropped: list[tuple[str, str, str]] = field(default_factory=list)
    """(key, source, reason) for every key not passed to the component."""


def parse_python_literal(text: str | None, what: str, expected: type) -> Any:
    """Parse a registry tag written as a Python literal, safely (ast.literal_eval, never eval)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return expected()
    if isinstance(text, expected):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"{what} is not a Python literal: {exc}") from exc
    if not isinstance(value, expected):
        raise ValueError(f"{what} must be a {expected.__name__}, got {type(value).__name__}")
    return value


def parse_overrides(text: str) -> dict[str, Any]:
    """The user's overrides setting: a JSON object."""
    value = json.loads(text or "{}")
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, got {type(value).__name__}")
    return value


def _flag(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text
    raise ValueError(f"expected true or false, got {value!r}")


class InputSpec(NamedTuple):
    """What a component declares of one input: its type, and the enum or bounds it allows."""

    type: str
    enum: list[str] | None = None
    min: float | None = None
    max: float | None = None


def coerce(
    value: Any, input_type: str, enum: list[str] | None, minimum: float | None = None, maximum: float | None = None
) -> Any:
    """Coerce a value to a component input type (integer, number, boolean, string), within the
    component's declared bounds: neither the SDK's `_validate()` nor the service checks `min`/`max`
    before the job reaches the GPUs."""
    kind = input_type.lower()
    if kind in ("integer", "number"):
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        number = float(value)
        if kind == "integer" and number != int(number):
            raise ValueError(f"expected an integer, got {value!r}")
        if minimum is not None and number < minimum:
            raise ValueError(f"must be at least {minimum:g}, got {value!r}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be at most {maximum:g}, got {value!r}")
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return _flag(value) == "true"
    if enum and set(enum) <= {"true", "false"}:
        return _flag(value)
    text = str(value) if not isinstance(value, bool) else _flag(value)
    if enum and text not in enum:
        raise ValueError(f"expected one of {', '.join(enum)}, got {value!r}")
    return text


def merge_parameters(
    component_inputs: Mapping[str, tuple[Any, ...]],
    model_defaults: Mapping[str, Any],
    overrides: Mapping[str, Any],
    choices: UploadChoices | None = None,
) -> MergedParameters:
    """Layer defaults < model tag < overrides < the upload's own choices; keep and coerce only the component's
    own inputs. A bad override raises ParameterError naming FINETUNE_OVERRIDES; a bad upload choice, one naming
    its blob metadata key (and upload option): the same checks against the same component.

    `component_inputs` maps input name -> InputSpec (type, enum, min, max), read from the component.
    """
    layers = (
        ("chatft defaults", {**TRAINING_DEFAULTS, **OPTIMISATION_DEFAULTS}),
        ("model_specific_defaults tag", model_defaults),
        ("FINETUNE_OVERRIDES", overrides),
        (UPLOAD_SOURCE, choices.overrides() if choices else {}),
    )
    by_input = {PARAMETERS[c]: c for c in PARAMETERS}
    merged: dict[str, Any] = {}
    dropped: list[tuple[str, str, str]] = []
    for source, layer in layers:
        for key, value in layer.items():
            setting = METADATA[by_input[key]] if source == UPLOAD_SOURCE else source
            label = choice_label(by_input[key]) if source == UPLOAD_SOURCE else source
            if key in RESERVED_INPUTS:
                dropped.append((key, source, "set by chatft itself"))
            elif key not in component_inputs:
                if source == UPLOAD_SOURCE:  # asked for by name: never silently not applied
                    raise ParameterError(f"{label}: {key} is not an input of the fine-tuning component", setting)
                dropped.append((key, source, "not an input of the component"))
            else:
                spec = InputSpec(*component_inputs[key])
                try:
                    merged[key] = coerce(value, spec.type, spec.enum, spec.min, spec.max)
                except (TypeError, ValueError) as exc:
                    if source in ("FINETUNE_OVERRIDES", UPLOAD_SOURCE):
                        raise ParameterError(f"{label}: {key}: {exc}", setting) from exc
                    dropped.append((key, source, f"invalid value: {exc}"))
    return MergedParameters(merged, dropped)
