"""Reading Azure resource tags the way Azure treats them: names are case-insensitive.

`Chatft_Keep=true`, `CHATFT_KEEP=true` and `chatft_keep=true` are the same tag to Azure, so they
must be to us; a person protecting an endpoint may also write `yes` or `1`.
"""

from __future__ import annotations

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
