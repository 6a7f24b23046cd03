"""What was done to an upload's endpoints (keep, release, retire with its reason, redeploy), kept across redeploys.

A redeploy replaces the row's deployment record (`entry.deploy`), so its keep tag, its retirement and the
redeploy before it would be lost: each is also recorded here, a bounded list on the ledger row
(`entry.extra["history"]`, JSON text in one Table column), oldest first. A retirement nobody recorded (the
janitor's, an evaluation gate's) is taken from the deployment record when the deployment is replaced. Pure.
"""

from __future__ import annotations

import json
from typing import Any

from shared.domain.ledger import LedgerEntry

HISTORY = "history"
"""`entry.extra` key: the recorded actions, a JSON list of {at, action, endpoint, by, detail}."""
MAX_ITEMS = 30
"""The newest this many are kept (a Table string column holds 32K characters; an item is under 700)."""
TEXT_MAX = 300
KEEP, RELEASE, RETIRE, REDEPLOY = "keep", "release", "retire", "redeploy"


def items(entry: LedgerEntry) -> list[dict[str, str]]:
    """The recorded actions, oldest first; a column someone broke reads as none (it is history, not state)."""
    try:
        loaded = json.loads(entry.extra.get(HISTORY) or "[]")
    except ValueError:
        return []
    return [i for i in loaded if isinstance(i, dict) and i.get("action")] if isinstance(loaded, list) else []


def _item(action: str, at: Any, endpoint: Any, by: Any, detail: Any) -> dict[str, str]:
    return {
        "at": str(at.isoformat() if hasattr(at, "isoformat") else at or "")[:40],
        "action": action,
        "endpoint": str(endpoint or "")[:64],
        "by": str(by or "")[:TEXT_MAX],
        "detail": str(detail or "")[:TEXT_MAX],
    }


def _same(a: dict[str, str], b: dict[str, str]) -> bool:
    return a["action"] == b.get("action") and a["at"] == b.get("at") and a["endpoint"] == b.get("endpoint")


def add(entry: LedgerEntry, action: str, at: Any, *, endpoint: Any = "", by: Any = "", detail: Any = "") -> None:
    """Record an action once (an action at the same moment on the same endpoint is the same one)."""
    new = _item(action, at, endpoint, by, detail)
    recorded = items(entry)
    if any(_same(new, old) for old in recorded):
        return
    entry.extra[HISTORY] = json.dumps([*recorded, new][-MAX_ITEMS:], separators=(",", ":"))


def unrecorded(deploy: dict[str, Any]) -> list[dict[str, str]]:
    """What a deployment record shows that nobody may have recorded: the retirement it followed and the redeploy
    (`redeployed_after`, `redeployed_by`, set by shared.flows.submission and shared.flows.endpoint_actions), and its own
    retirement (the janitor's or a person's)."""
    found = []
    endpoint = deploy.get("endpoint")
    after = deploy.get("redeployed_after") if isinstance(deploy.get("redeployed_after"), dict) else {}
    if after.get("at") and after.get("reason"):
        found.append(
            _item(RETIRE, after["at"], endpoint, after.get("by") or "the idle-endpoint janitor", after["reason"])
        )
    if after or deploy.get("redeployed_by"):
        model = f"model {deploy.get('model_name')}:{deploy.get('model_version')}"
        by = deploy.get("redeployed_by") or "a new upload of the same file"
        found.append(_item(REDEPLOY, deploy.get("started_at"), endpoint, by, model))
    retired = deploy.get("retired") if isinstance(deploy.get("retired"), dict) else {}
    if retired.get("at"):
        found.append(
            _item(
                RETIRE, retired["at"], endpoint, retired.get("by") or "the idle-endpoint janitor", retired.get("reason")
            )
        )
    return found


def archive(entry: LedgerEntry, previous: dict[str, Any]) -> None:
    """Before `previous` (the row's deployment record) is replaced: record what only it shows."""
    for item in unrecorded(previous):
        add(entry, item["action"], item["at"], endpoint=item["endpoint"], by=item["by"], detail=item["detail"])


def shown(entry: LedgerEntry) -> list[dict[str, str]]:
    """The recorded actions and what the current deployment shows besides, in the order they were done (not by
    their times: the janitor's clock and a person's may disagree)."""
    recorded = items(entry)
    return [*recorded, *(i for i in unrecorded(entry.deploy) if not any(_same(i, old) for old in recorded))]


def line(item: dict[str, str]) -> str:
    """'2026-12-05T19:40:01 retire ep-x by chatft retire: demo over'."""
    text = f"{item['at'][:19]} {item['action']}" + (f" {item['endpoint']}" if item.get("endpoint") else "")
    by, detail = item.get("by") or "", item.get("detail") or ""
    detail = detail.removeprefix(f"retired by {by}").removeprefix(":").strip() if by else detail
    return text + (f" by {by}" if by else "") + (f": {detail}" if detail else "")


def lines(entry: LedgerEntry) -> list[str]:
    return [line(i) for i in shown(entry)]
