"""Is the foundation model fit to fine-tune today? Archived or retired models fail early."""

from __future__ import annotations

from datetime import date

from .errors import PreflightError

MODEL_SETTING = "FINETUNE_MODEL"


def _date_tag(tags: dict[str, str], key: str) -> date | None:
    raw = tags.get(key)
    if not raw:
        return None
    try:
        return date.fromisoformat(str(raw).strip()[:10])
    except ValueError:
        return None


def check_model(
    name: str, tags: dict[str, str] | None, stage: str | None, today: date, *, setting: str = MODEL_SETTING
) -> list[str]:
    """Raise PreflightError if the model cannot be fine-tuned, naming `setting` (FINETUNE_MODEL, or the metadata
    key of an upload that chose the model); return warnings (e.g. deprecation soon)."""
    tags = tags or {}
    if (stage or "").strip().lower() == "archived":
        raise PreflightError(f"model {name} is archived in the registry; choose another model", setting)
    retired = _date_tag(tags, "FinetuneRetirementDate")
    if retired is not None and retired <= today:
        raise PreflightError(
            f"fine-tuning of {name} was retired on {retired.isoformat()}; choose a model that can still be fine-tuned",
            setting,
        )
    warnings = []
    deprecated = _date_tag(tags, "FinetuneDeprecationDate")
    if deprecated is not None and deprecated <= today:
        when = f", retiring on {retired.isoformat()}" if retired else ""
        warnings.append(f"fine-tuning of {name} is deprecated since {deprecated.isoformat()}{when}")
    return warnings
