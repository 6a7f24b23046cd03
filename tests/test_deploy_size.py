"""Which VM size an endpoint deploys on (issue 10 item 2): DEPLOY_INSTANCE_TYPE when set, else the cheapest
size in the model's own `inference_compute_allow_list`; the report names the size and why; a model that
recommends nothing fails before anything billable exists, naming the setting.

Runs the whole flow through the indexed functions on Azurite, with the real MLClient over tests/aml_rest.py.
"""

from __future__ import annotations

import pytest

import shared.entry.app_wiring
from shared.domain.ledger import Status
from tests.deploy_flow import completed, report, row, run_until, scoring, send, submit
from tests.fake_aml import DEFAULT_MODEL_TAGS, model


@pytest.fixture
def flow(aml, blob_service, storage_env):
    workspace, registry = aml
    with scoring(workspace):
        yield workspace, registry


def deploy(workspace, blob_service, storage_env, done) -> None:
    job, tags = submit(blob_service, storage_env, workspace)
    send(completed(job, tags))
    run_until(done)


def deployed_size(workspace) -> str:
    [doc] = workspace.online_deployments._json.values()
    return doc["properties"]["instanceType"]


def test_with_no_setting_the_cheapest_recommended_size_is_deployed_and_reported(
    flow, blob_service, storage_env
) -> None:
    workspace, _ = flow
    assert shared.entry.app_wiring.settings().deploy_instance_type == ""  # the shipped default
    deploy(workspace, blob_service, storage_env, lambda: row().status is Status.LIVE)
    # Phi-4 v8 recommends NC24/48/96ads_A100_v4, ND96asr_v4, ND96amsr_A100_v4, ND96isr_H100_v5,
    # NC40ads_H100_v5, NC80adis_H100_v5: the single-A100 NC24ads is the cheapest by list price.
    assert deployed_size(workspace) == "Standard_NC24ads_A100_v4"
    section = report(blob_service, storage_env)["deployment"]
    assert section["instance_type"] == "Standard_NC24ads_A100_v4"
    assert "cheapest" in section["instance_type_why"] and "inference_compute_allow_list" in section["instance_type_why"]


def test_the_setting_overrides_and_the_report_says_so(flow, blob_service, storage_env, monkeypatch) -> None:
    workspace, _ = flow
    monkeypatch.setenv("DEPLOY_INSTANCE_TYPE", "Standard_NC48ads_A100_v4")
    shared.entry.app_wiring.settings.cache_clear()
    deploy(workspace, blob_service, storage_env, lambda: row().status is Status.LIVE)
    assert deployed_size(workspace) == "Standard_NC48ads_A100_v4"
    assert "set by DEPLOY_INSTANCE_TYPE" in report(blob_service, storage_env)["deployment"]["instance_type_why"]


@pytest.mark.parametrize(
    "inference_tag",
    [None, "[]", "not a list", "['Standard_NC6s_v3']"],  # absent, empty, malformed, only retired sizes
)
def test_a_model_that_recommends_no_usable_size_fails_before_anything_billable(
    flow, blob_service, storage_env, inference_tag
) -> None:
    workspace, registry = flow
    tags = {k: v for k, v in DEFAULT_MODEL_TAGS.items() if k != "inference_compute_allow_list"}
    if inference_tag is not None:
        tags["inference_compute_allow_list"] = inference_tag
    name = shared.entry.app_wiring.settings().finetune_model
    registry.models._models[name] = model(name, tags=tags)
    deploy(workspace, blob_service, storage_env, lambda: row().status is Status.DEPLOY_FAILED)
    assert "DEPLOY_INSTANCE_TYPE" in row().error
    assert all(call[0] != "create" for call in workspace.online_endpoints.calls), "no endpoint was created"
    assert "DEPLOY_INSTANCE_TYPE" in report(blob_service, storage_env)["deployment"]["error"]
