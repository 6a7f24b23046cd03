"""Reading Azure resource tags the way Azure treats them: names are case-insensitive.

`Chatft_Keep=true`, `CHATFT_KEEP=true` and `chatft_keep=true` are the same tag to Azure, so they
must be to us; a person protecting an endpoint may also write `yes` or `1`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

TRUTHY = frozenset({"true", "yes", "1", "on", "y"})


def tag(tags: Mapping[str, str] | None, name: str) -> str | None:
    """The value of tag `name`, whatever the case of its name on the resource."""
    if not tags:
        return None
    if name in tags:
        return tags[name]
    wanted = name.lower()
    return next((str(v) for k, v in tags.items() if str(k).lower() == wanted), None)


def is_true(value: str | None) -> bool:
    """Exactly `true`, in any case: how chatft marks what it created (never loosened)."""
    return (value or "").strip().lower() == "true"


def is_truthy(value: str | None) -> bool:
    """true/yes/1/on/y in any case: how a person may write a protecting tag."""
    return (value or "").strip().lower() in TRUTHY


MAX_VALUE = 256
"""Azure's limit on a tag value ("the tag value has a limit of 256 characters": MicrosoftDocs azure-docs
articles/azure-resource-manager/management/tag-resources.md, "Limitations"); a longer one is refused (400)."""
MODEL_TAG = "chatft_model"
"""The model an endpoint serves, as `name:version`. Its full ARM id (which passes 256 characters with a long
resource group and workspace name) is on the ledger row (`deploy.model_id`). Endpoints tagged before this held
the id itself; `model_of` reads both."""
_MODEL_PATH = re.compile(r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/?$", re.IGNORECASE)


def model_tag(name: str, version: str) -> str:
    return f"{name}:{version}"


def model_of(value: str | None) -> tuple[str, str] | None:
    """(name, version) from a chatft_model tag: `name:version`, or the ARM id / azureml:// id older endpoints
    carry (.../models/<name>/versions/<version>); None if it is neither."""
    text = (value or "").strip()
    found = _MODEL_PATH.search(text)
    if found:
        return found["name"], found["version"]
    name, sep, version = text.rpartition(":")
    if sep and name and version and "/" not in text:
        return name, version
    return None


def endpoint_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags as an endpoint is given them: chatft_model in its short form whatever form it came in, so no
    value passes MAX_VALUE because of a long resource group or workspace name."""
    fitted = dict(tags)
    for key, value in tags.items():
        if str(key).lower() == MODEL_TAG and (model := model_of(str(value))):
            fitted[key] = model_tag(*model)
    return fitted
