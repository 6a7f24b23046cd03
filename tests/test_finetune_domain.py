"""Pure fine-tuning rules: parameter merge, display name, compute checks, model preflight."""

from __future__ import annotations

from datetime import date

import pytest

from shared.domain.finetune.compute import allowed_sizes, check_cluster_state, check_vm_size, gpus_for
from shared.domain.finetune.errors import PreflightError
from shared.domain.finetune.model_check import check_model
from shared.domain.finetune.params import merge_parameters, parse_python_literal
from shared.domain.naming import aml_name, display_name, job_name
from shared.settings import Settings
from tests.fake_aml import DEFAULT_MODEL_NAME, DEFAULT_MODEL_TAGS, PHI3_TAGS

INPUTS = {
    "num_train_epochs": ("integer", None),
    "per_device_train_batch_size": ("integer", None),
    "per_device_eval_batch_size": ("integer", None),
    "gradient_accumulation_steps": ("integer", None),
    "learning_rate": ("number", None),
    "lr_scheduler_type": ("string", ["linear", "cosine"]),
    "apply_lora": ("string", ["true", "false"]),
    "apply_deepspeed": ("string", ["true", "false"]),
    "deepspeed_stage": ("string", ["2", "3"]),
    "precision": ("string", ["32", "16"]),
    "save_total_limit": ("integer", None),
    "logging_steps": ("integer", None),
    "logging_strategy": ("string", ["epoch", "steps"]),
    "apply_ort": ("string", ["true", "false"]),
    "ignore_mismatched_sizes": ("string", ["true", "false"]),
    "compute_finetune": ("string", None),
}
TODAY = date(2026, 11, 22)


def phi3_defaults() -> dict:
    return parse_python_literal(PHI3_TAGS["model_specific_defaults"], "tag", dict)


def test_merge_layers_defaults_then_model_tag_then_overrides() -> None:
    merged = merge_parameters(INPUTS, phi3_defaults(), {"num_train_epochs": 2, "apply_lora": False})
    v = merged.values
    assert v["num_train_epochs"] == 2  # override beats the tag's 1 and the default 3
    assert v["learning_rate"] == 5e-6 and isinstance(v["learning_rate"], float)
    assert v["lr_scheduler_type"] == "cosine"
    assert v["apply_lora"] == "false"  # a boolean override becomes the string flag
    assert v["apply_deepspeed"] == "true" and v["deepspeed_stage"] == "2" and v["precision"] == "16"
    assert v["save_total_limit"] == 1


def test_keys_that_are_not_component_inputs_are_dropped_with_a_reason() -> None:
    merged = merge_parameters(INPUTS, phi3_defaults(), {"compute_finetune": "mine", "warp_speed": 9})
    dropped = {(key, source): reason for key, source, reason in merged.dropped}
    assert dropped[("learning_rate_min", "model_specific_defaults tag")] == "not an input of the component"
    assert dropped[("learning_rate_max", "model_specific_defaults tag")] == "not an input of the component"
    assert dropped[("warp_speed", "FINETUNE_OVERRIDES")] == "not an input of the component"
    assert dropped[("compute_finetune", "FINETUNE_OVERRIDES")] == "set by chatft itself"
    assert set(merged.values) <= set(INPUTS)
    assert "learning_rate_min" not in merged.values and "compute_finetune" not in merged.values


def test_flags_are_strings_never_booleans() -> None:
    merged = merge_parameters(INPUTS, {"apply_ort": True, "ignore_mismatched_sizes": "False"}, {})
    assert merged.values["apply_ort"] == "true" and merged.values["ignore_mismatched_sizes"] == "false"
    assert all(not isinstance(v, bool) for v in merged.values.values())


def test_a_bad_override_names_the_setting() -> None:
    with pytest.raises(ValueError, match="FINETUNE_OVERRIDES: num_train_epochs"):
        merge_parameters(INPUTS, {}, {"num_train_epochs": 1.5})
    with pytest.raises(ValueError, match="FINETUNE_OVERRIDES: lr_scheduler_type"):
        merge_parameters(INPUTS, {}, {"lr_scheduler_type": "warp"})


def test_model_tag_is_parsed_with_literal_eval_never_eval() -> None:
    with pytest.raises(ValueError):
        parse_python_literal("__import__('os').system('echo pwned')", "tag", dict)
    assert parse_python_literal("{'a': 1}", "tag", dict) == {"a": 1}
    assert parse_python_literal(None, "tag", dict) == {}


def test_display_name_as_the_notebook_builds_it() -> None:
    merged = merge_parameters(INPUTS, phi3_defaults(), {})
    name = display_name("Phi-3-mini-4k-instruct", merged.values, gpus_per_node=4)
    assert name == "Phi-3-mini-4k-instruct-ultrachat-bs4-cosine-ds2-lora-save_limit1-seqlen-1"
    nods = display_name("org/Model x", {"apply_deepspeed": "false", "apply_lora": "false"}, 2)
    assert nods == "org-Model-x-ultrachat-bs2-linear-nods-nolora-save_limit-1-seqlen-1"
    assert len(display_name("m" * 400, {}, 1)) == 255


def test_job_and_asset_names_are_aml_safe() -> None:
    name = job_name("Team A/Ünïcode chats.v2.jsonl", "f" * 64, 3)
    assert name == "chatft-team-a-n-code-chats.v2-ffffffffffff-a3".replace(".", "-")
    assert aml_name("__--x y--") == "x-y" and aml_name("!!!") == "x" and len(aml_name("a" * 500)) == 255


@pytest.mark.parametrize(
    "tag",
    [
        PHI3_TAGS["finetune_compute_allow_list"],
        "[Standard_NC24ads_A100_v4, Standard_NC48ads_A100_v4]",  # how registry YAML writes it
    ],
)
def test_allow_list_is_compared_case_insensitively(tag: str) -> None:
    tags = {"finetune_compute_allow_list": tag}
    assert "standard_nc24ads_a100_v4" in allowed_sizes(tags)
    check_vm_size("STANDARD_nc24ADS_a100_V4", tags, setting="FINETUNE_INSTANCE_TYPE")
    with pytest.raises(PreflightError, match="not in the model's finetune_compute_allow_list") as caught:
        check_vm_size("Standard_NC6s_v3", tags, setting="FINETUNE_INSTANCE_TYPE")
    assert caught.value.setting == "FINETUNE_INSTANCE_TYPE"


@pytest.mark.parametrize("size", ["Standard_NC6", "standard_nc12", "Standard_NC24", "Standard_NC24r"])
def test_unsupported_sizes_without_allow_list(size: str) -> None:
    with pytest.raises(PreflightError, match="not supported"):
        check_vm_size(size, {}, setting="FINETUNE_COMPUTE")
    check_vm_size("Standard_NC24ads_A100_v4", {}, setting="FINETUNE_COMPUTE")


def test_gpus_per_node_come_from_the_matching_vm_size() -> None:
    sizes = [("Standard_NC24ads_A100_v4", 1), ("Standard_NC96ads_A100_v4", 4), ("Standard_D12_v2", 0)]
    assert gpus_for("standard_nc96ads_a100_v4", sizes, setting="S") == 4
    with pytest.raises(PreflightError, match="no GPUs"):
        gpus_for("Standard_D12_v2", sizes, setting="S")
    with pytest.raises(PreflightError, match="not offered"):
        gpus_for("Standard_ND96asr_v4", sizes, setting="S")


def test_failed_cluster_is_rejected() -> None:
    with pytest.raises(PreflightError, match="Failed"):
        check_cluster_state("gpu", "Failed")
    check_cluster_state("gpu", "Succeeded")


def test_retired_fine_tuning_fails_naming_the_model_setting() -> None:
    with pytest.raises(PreflightError, match="retired on 2025-08-30") as caught:
        check_model("Phi-3-mini-4k-instruct", PHI3_TAGS, None, TODAY)
    assert caught.value.setting == "FINETUNE_MODEL"
    assert "FINETUNE_MODEL" in str(caught.value)


def test_archived_model_fails_and_deprecation_only_warns() -> None:
    with pytest.raises(PreflightError, match="archived"):
        check_model("m", {}, "Archived", TODAY)
    warnings = check_model(
        "m", {"FinetuneDeprecationDate": "2026-01-01", "FinetuneRetirementDate": "2027-01-01"}, None, TODAY
    )
    assert warnings == ["fine-tuning of m is deprecated since 2026-01-01, retiring on 2027-01-01"]
    assert check_model("m", {"FinetuneRetirementDate": "2027-01-01"}, None, TODAY) == []


def test_coercion_enforces_the_declared_bounds() -> None:
    from shared.domain.finetune.params import InputSpec, coerce

    assert coerce("2", "integer", None, 1) == 2
    with pytest.raises(ValueError, match="at least 1"):
        coerce(0, "integer", None, 1)
    with pytest.raises(ValueError, match=r"at most 0\.5"):
        coerce(0.9, "number", None, None, 0.5)
    merged = merge_parameters({"num_train_epochs": InputSpec("integer", None, 1.0)}, {"num_train_epochs": 0}, {})
    assert merged.values == {"num_train_epochs": 3}  # chatft's default stays; the tag's 0 is dropped
    assert (
        "num_train_epochs",
        "model_specific_defaults tag",
        "invalid value: must be at least 1, got 0",
    ) in merged.dropped


def test_the_default_model_can_be_fine_tuned_on_the_default_size() -> None:
    """Was: FINETUNE_MODEL defaulted to Phi-3-mini-4k-instruct, whose fine-tuning retired on 2025-08-30, so
    every default submission failed preflight. The default's registry tags (Azure/azureml-assets
    assets/models/system/Phi-4/spec.yaml, tests/fake_aml.DEFAULT_MODEL_TAGS) name a chat-completion model
    with no fine-tuning retirement, whose fine-tuning allow list holds the default FINETUNE_INSTANCE_TYPE."""
    defaults = Settings.from_env({})
    assert defaults.finetune_model == DEFAULT_MODEL_NAME
    assert check_model(defaults.finetune_model, DEFAULT_MODEL_TAGS, None, TODAY) == []
    assert DEFAULT_MODEL_TAGS["task"] == "chat-completion"
    allowed = allowed_sizes(DEFAULT_MODEL_TAGS, "finetune_compute_allow_list")
    assert allowed is not None and defaults.finetune_instance_type.lower() in allowed
