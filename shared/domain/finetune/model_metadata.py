"""A registry model's fine-tuning facts, wherever the registry keeps them, as the tag view the checks read.

Until mid-2026 the model specs of Azure/azureml-assets (`assets/models/system/<name>/spec.yaml`) kept
them in `tags`: `finetune_compute_allow_list`, `inference_compute_allow_list`, `FinetuneDeprecationDate`,
`FinetuneRetirementDate`, `task`. The July 2026 migration (e.g. Phi-4 version 8 at commit 4b41f8ccbc)
moved them into `system_metadata`, leaving only `model_specific_defaults` in `tags`:
`supportedComputes.finetuneComputes` / `inferenceComputes` (also `SKU.finetuneRecommendedSkus` /
`inferenceRecommendedSkus`), `deprecation.finetuneDeprecationDate` / `finetuneRetirementDate` (ISO
date-times) and `tasks.fineTuningTasks`. azure-ai-ml reads the latter into `Model._system_metadata`
(azure/ai/ml/entities/_assets/_artifacts/model.py, `_from_rest_object`).

Reading only `tags` would silently lose the allow lists (no size check, and no size to deploy on) and the
retirement date (a retired model submitted anyway), so both are merged here. A value in `tags` wins: it
is what older registries and the published tags say. Pure: no Azure imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FROM_SYSTEM_METADATA: dict[str, tuple[tuple[str, str], ...]] = {
    "finetune_compute_allow_list": (("supportedComputes", "finetuneComputes"), ("SKU", "finetuneRecommendedSkus")),
    "inference_compute_allow_list": (
        ("supportedComputes", "inferenceComputes"),
        ("SKU", "inferenceRecommendedSkus"),
    ),
    "FinetuneDeprecationDate": (("deprecation", "finetuneDeprecationDate"),),
    "FinetuneRetirementDate": (("deprecation", "finetuneRetirementDate"),),
    "finetuning_tasks": (("tasks", "fineTuningTasks"),),
}
"""Legacy tag name -> where the migrated specs keep it in system_metadata (first present wins)."""

FACT_TAGS = ("finetune_compute_allow_list", "inference_compute_allow_list")
"""With both of these in `tags`, the model's spec is the old form: system_metadata need not be read."""


def _as_tag(value: Any) -> str:
    """The registry's tag form: strings stay, lists and mappings become Python literals."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return repr({str(k): v for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return repr([str(v) for v in value])
    return str(value)


def _lookup(metadata: Mapping[str, Any], path: tuple[str, str]) -> Any:
    """metadata[a][b], matching keys case-insensitively (the spec spells `SKU` and `sku` both ways)."""
    node: Any = metadata
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = next((v for k, v in node.items() if str(k).lower() == key.lower()), None)
    return node


def model_tags(tags: Mapping[str, Any] | None, system_metadata: Any) -> dict[str, str]:
    """The model's tags, with every fine-tuning fact `tags` lacks filled in from `system_metadata`."""
    merged = {str(k): _as_tag(v) for k, v in (tags or {}).items() if v is not None}
    if not isinstance(system_metadata, Mapping):
        return merged
    present = {k.lower() for k in merged}
    for tag, paths in FROM_SYSTEM_METADATA.items():
        if tag.lower() in present:
            continue
        for path in paths:
            value = _lookup(system_metadata, path)
            if value not in (None, "", [], {}):
                merged[tag] = _as_tag(value)
                break
    return merged
