"""Which VM size an endpoint deploys on: DEPLOY_INSTANCE_TYPE, else the cheapest size the model recommends.

The model's own inference recommendations are its registry tag `inference_compute_allow_list`
(a Python-literal list, parsed by `shared.domain.finetune.compute.size_list`). Its published spec,
Azure/azureml-assets `assets/models/system/<model>/spec.yaml`, holds the same list three ways over
time: that tag plus the property `inference-recommended-sku` (until the June 2026 migration), then
`system_metadata.SKU.inferenceRecommendedSkus` and `system_metadata.supportedComputes.inferenceComputes`.
No spec carries any other inference-size recommendation (only a minimum, `inference-min-sku-spec`).

"Cheapest" is by the hourly list price below: Azure Retail Prices API
(https://prices.azure.com/api/retail/prices, the source of the Linux VM pricing page
https://azure.microsoft.com/pricing/details/virtual-machines/linux/), region `eastus`,
`priceType eq 'Consumption'` (pay-as-you-go), Linux meters (not Windows, Spot or Low Priority), USD
per hour, as published in 2025. Re-check a row with the API's filter, e.g. `$filter=armRegionName eq
'eastus' and armSkuName eq 'Standard_NC24ads_A100_v4' and priceType eq 'Consumption'`.

Prices differ by region and change, but only their *order* is used, and that follows GPU family and
count (within a family the price grows with the GPUs: NC48ads_A100_v4 costs twice NC24ads_A100_v4).
Sizes not in the table sort after every known one; ties (and unknown sizes) are broken by name, so
the choice is deterministic. Retired sizes (below) are never chosen: an endpoint cannot be created on
them, yet older specs still list them (Phi-3-mini-4k-instruct's list starts with Standard_NC6s_v3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from shared.domain.finetune.compute import size_list

INFERENCE_TAG = "inference_compute_allow_list"
DEPLOY_SETTING = "DEPLOY_INSTANCE_TYPE"
PRICE_BASIS = "eastus pay-as-you-go Linux list price"

LIST_PRICES_USD_PER_HOUR: dict[str, float] = {
    # NCasT4_v3: NVIDIA T4 (16 GB)
    "Standard_NC4as_T4_v3": 0.526,
    "Standard_NC8as_T4_v3": 0.752,
    "Standard_NC16as_T4_v3": 1.204,
    "Standard_NC64as_T4_v3": 4.352,
    # NVadsA10_v5: NVIDIA A10, 1/6, 1/3, 1/2, 1 or 2 GPUs
    "Standard_NV6ads_A10_v5": 0.454,
    "Standard_NV12ads_A10_v5": 0.908,
    "Standard_NV18ads_A10_v5": 1.60,
    "Standard_NV36ads_A10_v5": 3.20,
    "Standard_NV36adms_A10_v5": 4.52,
    "Standard_NV72ads_A10_v5": 6.52,
    # NCv3: NVIDIA V100 (16 GB); retired, kept so the order is documented
    "Standard_NC6s_v3": 3.06,
    "Standard_NC12s_v3": 6.12,
    "Standard_NC24s_v3": 12.24,
    "Standard_NC24rs_v3": 13.464,
    # NC A100 v4: NVIDIA A100 PCIe (80 GB), 1, 2 or 4 GPUs
    "Standard_NC24ads_A100_v4": 3.673,
    "Standard_NC48ads_A100_v4": 7.346,
    "Standard_NC96ads_A100_v4": 14.692,
    # NCads H100 v5: NVIDIA H100 NVL (94 GB), 1 or 2 GPUs
    "Standard_NC40ads_H100_v5": 6.98,
    "Standard_NC80adis_H100_v5": 13.96,
    # NDv2: 8 x V100 (32 GB)
    "Standard_ND40rs_v2": 22.032,
    # ND A100 v4: 8 x A100 (40 GB), ND A100 v4 80 GB: 8 x A100 (80 GB)
    "Standard_ND96asr_v4": 27.197,
    "Standard_ND96amsr_A100_v4": 32.77,
    # ND H100 v5: 8 x H100 (80 GB)
    "Standard_ND96isr_H100_v5": 98.32,
}
"""USD per hour (source in the module docstring). Look-ups are case-insensitive."""

RETIRED_SIZES: dict[str, date] = {
    # MicrosoftDocs/azure-docs articles/virtual-machines/ncv3-nc6s-nc12s-nc24s-retirement.md and
    # ncv3-nc24rs-retirement.md: "On September 30, 2025, Microsoft Azure will retire ..."
    "Standard_NC6s_v3": date(2025, 9, 30),
    "Standard_NC12s_v3": date(2025, 9, 30),
    "Standard_NC24s_v3": date(2025, 9, 30),
    "Standard_NC24rs_v3": date(2025, 9, 30),
    # articles/machine-learning/includes/retiring-vms.md: NC, NCv2 and ND series retire August 31, 2023.
    "Standard_NC6": date(2023, 8, 31),
    "Standard_NC12": date(2023, 8, 31),
    "Standard_NC24": date(2023, 8, 31),
    "Standard_NC24r": date(2023, 8, 31),
    "Standard_NC6s_v2": date(2023, 8, 31),
    "Standard_NC12s_v2": date(2023, 8, 31),
    "Standard_NC24s_v2": date(2023, 8, 31),
    "Standard_NC24rs_v2": date(2023, 8, 31),
    "Standard_ND6s": date(2023, 8, 31),
    "Standard_ND12s": date(2023, 8, 31),
    "Standard_ND24s": date(2023, 8, 31),
    "Standard_ND24rs": date(2023, 8, 31),
}
"""VM size -> the day Azure retired it (sizes are skipped from that day on)."""

_PRICE = {name.lower(): price for name, price in LIST_PRICES_USD_PER_HOUR.items()}
_RETIRED = {name.lower(): day for name, day in RETIRED_SIZES.items()}
_VM_SIZE = re.compile(r"[A-Za-z]+_[A-Za-z0-9_]+")


class NoInferenceSize(ValueError):
    """The model recommends no size we can deploy on: the message says why and names DEPLOY_INSTANCE_TYPE."""


@dataclass(frozen=True)
class InferenceSize:
    size: str
    """The VM size, spelled as the model's tag (or the setting) spells it."""
    reason: str
    """One line for the report: why this size."""


def price_of(size: str) -> float | None:
    """The list price per hour of a VM size (any casing); None if the table does not know it."""
    return _PRICE.get(size.strip().lower())


def _order(size: str) -> tuple[int, float, str, str]:
    price = price_of(size)
    return (0 if price is not None else 1, price or 0.0, size.lower(), size)


def _recommended(tags: Mapping[str, str] | None, model: str) -> list[str]:
    """The tag's sizes, casing kept, first spelling of each (case-insensitive) kept once."""
    sizes = size_list(dict(tags or {}), INFERENCE_TAG)
    if sizes is None:
        raise NoInferenceSize(
            f"{model} has no {INFERENCE_TAG} tag, so it recommends no inference size; set {DEPLOY_SETTING}"
        )
    valid = [s for s in sizes if _VM_SIZE.fullmatch(s)]
    if not valid:
        if any(s for s in sizes):
            raw = str((tags or {}).get(INFERENCE_TAG))
            raise NoInferenceSize(
                f"{model}'s {INFERENCE_TAG} tag is not a list of VM sizes ({raw[:80]!r}); set {DEPLOY_SETTING}"
            )
        raise NoInferenceSize(f"{model}'s {INFERENCE_TAG} tag lists no VM sizes; set {DEPLOY_SETTING}")
    unique: dict[str, str] = {}
    for size in valid:
        unique.setdefault(size.lower(), size)
    return list(unique.values())


def cheapest_inference_size(tags: Mapping[str, str] | None, model: str, *, today: date) -> InferenceSize:
    """The cheapest of the model's recommended inference sizes that is not retired by `today`.

    Raises NoInferenceSize when the tag is absent, empty, malformed, or lists only retired sizes.
    """
    sizes = _recommended(tags, model)
    retired = [s for s in sizes if (day := _RETIRED.get(s.lower())) is not None and day <= today]
    usable = sorted((s for s in sizes if s not in retired), key=_order)
    if not usable:
        raise NoInferenceSize(
            f"every size in {model}'s {INFERENCE_TAG} is retired ({', '.join(retired)}); "
            f"set {DEPLOY_SETTING} to a current GPU size"
        )
    choice = usable[0]
    price = price_of(choice)
    listed = f"{INFERENCE_TAG}: {', '.join(sizes)}"
    if price is None:
        why = f"first by name of {model}'s recommended inference sizes ({listed}); no list price is known for any"
    else:
        why = f"the cheapest of {model}'s recommended inference sizes ({listed}), about ${price:.2f}/h ({PRICE_BASIS})"
    skipped = f"; retired, skipped: {', '.join(retired)}" if retired else ""
    return InferenceSize(choice, f"{choice}: {why}{skipped}")


def deploy_instance_type(setting: str, tags: Mapping[str, str] | None, model: str, *, today: date) -> InferenceSize:
    """DEPLOY_INSTANCE_TYPE when set (it always wins), else the model's cheapest recommended size."""
    chosen = (setting or "").strip()
    if chosen:
        return InferenceSize(chosen, f"{chosen}: set by {DEPLOY_SETTING}")
    return cheapest_inference_size(tags, model, today=today)
