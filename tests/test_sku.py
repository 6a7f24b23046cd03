"""The deployment's VM size: DEPLOY_INSTANCE_TYPE, else the cheapest size the model recommends."""

from __future__ import annotations

from datetime import date
from itertools import permutations

import pytest

from shared.domain.deploy.sku import (
    INFERENCE_TAG,
    LIST_PRICES_USD_PER_HOUR,
    RETIRED_SIZES,
    InferenceSize,
    NoInferenceSize,
    cheapest_inference_size,
    deploy_instance_type,
    price_of,
)
from shared.domain.finetune.compute import allowed_sizes, size_list
from tests.fake_aml import DEFAULT_MODEL_NAME, DEFAULT_MODEL_TAGS, PHI3_TAGS

TODAY = date(2026, 11, 22)


def pick(sizes: object, today: date = TODAY, model: str = "m") -> InferenceSize:
    return cheapest_inference_size(
        {INFERENCE_TAG: sizes if not isinstance(sizes, list) else repr(sizes)}, model, today=today
    )


def test_the_default_model_deploys_on_its_cheapest_recommended_size() -> None:
    choice = cheapest_inference_size(DEFAULT_MODEL_TAGS, DEFAULT_MODEL_NAME, today=TODAY)
    assert choice.size == "Standard_NC24ads_A100_v4"
    assert choice.reason.startswith("Standard_NC24ads_A100_v4: the cheapest of Phi-4's recommended inference sizes (")
    assert "Standard_NC40ads_H100_v5" in choice.reason and "$3.67/h" in choice.reason
    assert "\n" not in choice.reason


def test_retired_sizes_are_skipped_and_named_but_chosen_before_they_retire() -> None:
    # Phi-3's list starts with the V100 Standard_NC6s_v3 ($3.06/h), cheaper than an A100 but retired 2025-09-30.
    now = cheapest_inference_size(PHI3_TAGS, "Phi-3-mini-4k-instruct", today=TODAY)
    assert now.size == "Standard_NC24ads_A100_v4"
    assert "retired, skipped: Standard_NC6s_v3" in now.reason
    before = cheapest_inference_size(PHI3_TAGS, "Phi-3-mini-4k-instruct", today=date(2025, 9, 29))
    assert before.size == "Standard_NC6s_v3" and "retired" not in before.reason
    assert cheapest_inference_size(PHI3_TAGS, "p", today=date(2025, 9, 30)).size == "Standard_NC24ads_A100_v4"


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        (
            ["Standard_NC80adis_H100_v5", "Standard_ND96isr_H100_v5", "Standard_NC40ads_H100_v5"],
            "Standard_NC40ads_H100_v5",
        ),
        (["Standard_ND96amsr_A100_v4", "Standard_ND96asr_v4"], "Standard_ND96asr_v4"),
        (
            ["Standard_NC96ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_NC40ads_H100_v5"],
            "Standard_NC40ads_H100_v5",
        ),
        (["Standard_NC40ads_H100_v5", "Standard_NC24ads_A100_v4"], "Standard_NC24ads_A100_v4"),
        (["Standard_NC4as_T4_v3", "Standard_NV6ads_A10_v5", "Standard_NC24ads_A100_v4"], "Standard_NV6ads_A10_v5"),
        (["Standard_NC8as_T4_v3", "Standard_NC4as_T4_v3"], "Standard_NC4as_T4_v3"),
        (["Standard_ND40rs_v2", "Standard_ND96asr_v4"], "Standard_ND40rs_v2"),
    ],
)
def test_the_cheapest_listed_size_wins_whatever_the_order(sizes: list[str], expected: str) -> None:
    for order in permutations(sizes):
        assert pick(list(order)).size == expected


def test_unknown_sizes_sort_after_known_ones_then_by_name() -> None:
    assert pick(["Standard_AAA_v9", "Standard_ND96isr_H100_v5"]).size == "Standard_ND96isr_H100_v5"
    only_unknown = pick(["Standard_Zeta_v1", "standard_alpha_v1", "Standard_Beta_v1"])
    assert only_unknown.size == "standard_alpha_v1"
    assert "no list price is known" in only_unknown.reason


def test_names_match_case_insensitively_and_keep_the_tags_spelling() -> None:
    assert pick(["STANDARD_NC40ADS_H100_V5", "standard_nc24ads_a100_v4"]).size == "standard_nc24ads_a100_v4"
    first_spelling = pick(["Standard_NC24ADS_A100_v4", "standard_nc24ads_a100_v4"])
    assert first_spelling.size == "Standard_NC24ADS_A100_v4"
    assert "Standard_NC24ADS_A100_v4" in first_spelling.reason
    assert "standard_nc24ads_a100_v4" not in first_spelling.reason  # listed once
    assert (
        pick(["standard_nc6s_v3", "Standard_NC12s_v3", "Standard_NC48ads_A100_v4"]).size == "Standard_NC48ads_A100_v4"
    )


def test_every_form_the_tag_comes_in() -> None:
    assert pick("[Standard_NC48ads_A100_v4, Standard_NC24ads_A100_v4]").size == "Standard_NC24ads_A100_v4"  # bare YAML
    assert pick('["Standard_NC48ads_A100_v4", "Standard_NC24ads_A100_v4"]').size == "Standard_NC24ads_A100_v4"
    tags = {INFERENCE_TAG: ["Standard_NC96ads_A100_v4", "Standard_NC48ads_A100_v4"]}  # already a list
    assert cheapest_inference_size(tags, "m", today=TODAY).size == "Standard_NC48ads_A100_v4"
    assert pick(["  Standard_NC48ads_A100_v4 ", "not a size!", "Standard_NC96ads_A100_v4"]).size == (
        "Standard_NC48ads_A100_v4"
    )


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (None, "Phi-9 has no inference_compute_allow_list tag"),
        ({}, "Phi-9 has no inference_compute_allow_list tag"),
        ({"finetune_compute_allow_list": "['Standard_NC24ads_A100_v4']"}, "has no inference_compute_allow_list tag"),
        ({INFERENCE_TAG: "[]"}, "lists no VM sizes"),
        ({INFERENCE_TAG: ""}, "lists no VM sizes"),
        ({INFERENCE_TAG: "{'Standard_NC24ads_A100_v4': 1}"}, "is not a list of VM sizes"),
        ({INFERENCE_TAG: "[1, 2]"}, "is not a list of VM sizes"),
        ({INFERENCE_TAG: "GPU please"}, "is not a list of VM sizes"),
        ({INFERENCE_TAG: "['Standard_NC6s_v3', 'Standard_NC24s_v3']"}, "every size in Phi-9's"),
    ],
)
def test_a_model_without_a_usable_recommendation_is_a_clear_error(tags: dict | None, message: str) -> None:
    with pytest.raises(NoInferenceSize) as caught:
        cheapest_inference_size(tags, "Phi-9", today=TODAY)
    assert message in str(caught.value)
    assert "DEPLOY_INSTANCE_TYPE" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_the_setting_overrides_the_recommendation() -> None:
    chosen = deploy_instance_type(" Standard_NC96ads_A100_v4 ", DEFAULT_MODEL_TAGS, DEFAULT_MODEL_NAME, today=TODAY)
    assert chosen == InferenceSize("Standard_NC96ads_A100_v4", "Standard_NC96ads_A100_v4: set by DEPLOY_INSTANCE_TYPE")
    assert deploy_instance_type("Standard_NC6s_v3", None, "m", today=TODAY).size == "Standard_NC6s_v3"  # no tags needed
    for empty in ("", "   "):
        assert deploy_instance_type(empty, DEFAULT_MODEL_TAGS, "m", today=TODAY).size == "Standard_NC24ads_A100_v4"
    with pytest.raises(NoInferenceSize):
        deploy_instance_type("", {}, "m", today=TODAY)


def test_the_price_table_is_well_formed_and_ordered_by_gpu_family_and_count() -> None:
    assert price_of("standard_nc24ads_a100_v4") == price_of("Standard_NC24ads_A100_v4") == 3.673
    assert price_of("Standard_Unknown_v1") is None
    assert all(price > 0 for price in LIST_PRICES_USD_PER_HOUR.values())
    assert len({name.lower() for name in LIST_PRICES_USD_PER_HOUR}) == len(LIST_PRICES_USD_PER_HOUR)
    order = sorted(LIST_PRICES_USD_PER_HOUR, key=LIST_PRICES_USD_PER_HOUR.__getitem__)
    for cheaper, dearer in [
        ("Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4"),
        ("Standard_NC48ads_A100_v4", "Standard_NC96ads_A100_v4"),
        ("Standard_NC40ads_H100_v5", "Standard_NC80adis_H100_v5"),
        ("Standard_NC24ads_A100_v4", "Standard_NC40ads_H100_v5"),
        ("Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4"),
        ("Standard_ND96amsr_A100_v4", "Standard_ND96isr_H100_v5"),
        ("Standard_NC4as_T4_v3", "Standard_NC24ads_A100_v4"),
    ]:
        assert order.index(cheaper) < order.index(dearer), (cheaper, dearer)
    assert all(day <= TODAY for day in RETIRED_SIZES.values())


def test_every_size_the_chat_models_recommend_has_a_price() -> None:
    for tags in (DEFAULT_MODEL_TAGS, PHI3_TAGS):
        for size in size_list(tags, INFERENCE_TAG) or []:
            assert price_of(size) is not None, size


def test_size_list_keeps_casing_and_allowed_sizes_still_lower_cases() -> None:
    tags = {"t": "['Standard_NC24ads_A100_v4', ' Standard_NC48ads_A100_v4 ']"}
    assert size_list(tags, "t") == ["Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4"]
    assert allowed_sizes(tags, "t") == ["standard_nc24ads_a100_v4", "standard_nc48ads_a100_v4"]
    assert size_list(tags, "absent") is None and allowed_sizes(tags, "absent") is None
    assert allowed_sizes({"finetune_compute_allow_list": "[Standard_A, Standard_B]"}) == ["standard_a", "standard_b"]
