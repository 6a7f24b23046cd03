"""Our chat_completion_pipeline fixture is held to the published component spec.

tests/fixtures/chat_completion_pipeline.published.json is a digest (names, types, defaults, enums,
min/max, optional, modes) of the newest published spec, Azure/azureml-assets
assets/training/finetune_acft_hf_nlp/components/pipeline_components/chat_completion/spec.yaml
(version and commit in the digest). When azureml publishes a new version, refresh the digest
from that file and this test shows what the fixture must follow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_component

from tests.fake_aml import FIXTURE

PUBLISHED = json.loads((Path(__file__).parent / "fixtures" / "chat_completion_pipeline.published.json").read_text())
OURS = yaml.safe_load(FIXTURE.read_text())
INPUT_KEYS = ("type", "optional", "default", "enum", "min", "max", "mode")


def test_the_fixture_declares_exactly_the_published_inputs_and_outputs() -> None:
    assert list(OURS["inputs"]) == list(PUBLISHED["inputs"])
    assert set(OURS["outputs"]) == set(PUBLISHED["outputs"])
    assert OURS["version"].startswith(PUBLISHED["version"] + "-")


@pytest.mark.parametrize("name", list(PUBLISHED["inputs"]))
def test_each_input_matches_the_published_declaration(name: str) -> None:
    ours = {k: OURS["inputs"][name][k] for k in INPUT_KEYS if k in OURS["inputs"][name]}
    assert ours == PUBLISHED["inputs"][name]


@pytest.mark.parametrize("name", list(PUBLISHED["outputs"]))
def test_each_output_matches_the_published_declaration(name: str) -> None:
    assert {k: OURS["outputs"][name][k] for k in ("type", "mode") if k in OURS["outputs"][name]} == (
        PUBLISHED["outputs"][name]
    )


def test_the_sdk_loads_the_fixture_with_its_constraints() -> None:
    component = load_component(source=str(FIXTURE))
    assert component.inputs["optim"].enum == ["adamw_torch", "adafactor"]
    assert component.inputs["evaluation_strategy"].enum == ["epoch", "steps", "disable"]
    assert component.inputs["num_train_epochs"].min == 1
    assert component.outputs["mlflow_model_folder"].type == "mlflow_model"
