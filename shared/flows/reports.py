"""Write an upload's report next to its data: report.json for tools, report.md for people.

Any number of workers may write one report at once (repeated deliveries, the reconciler, the
job event). report.json is changed by ETag-guarded read-modify-writes that carry a revision
number, and report.md is only ever replaced by a rendering of a newer revision, so both
converge to the last change whatever the interleaving, and no writer ever fails because
another one is writing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from shared.azure.storage import PreparedStore, Update
from shared.domain.chatdata.report import render_markdown
from shared.domain.chatdata.report_merge import clipped, set_section
from shared.logs import log_step

JSON = "application/json"
MARKDOWN = "text/markdown; charset=utf-8"


def write_report(
    store: PreparedStore, prefix: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
) -> str | None:
    """Apply `change` to the current report.json (None if there is none; returning None leaves it
    alone), then bring report.md up to that revision. Returns the report.md location, or None
    if there is no report. A change that changes nothing writes nothing (repeated deliveries)."""
    path = f"{prefix}/report.json"
    seen: dict[str, Any] = {}

    def apply(raw: bytes | None) -> bytes | None:
        existing = orjson.loads(raw) if raw else None
        doc = change(orjson.loads(raw) if raw else None)  # a copy: `change` may edit it in place
        if doc is None or (existing is not None and _content(clipped(doc)) == _content(existing)):
            seen["doc"] = existing
            return None
        doc = clipped(doc)
        doc["revision"] = (existing or {}).get("revision", 0) + 1
        seen["doc"] = doc
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    if store.update_bytes(path, apply, JSON) is Update.CONTENDED:
        log_step("report.contended", prefix=prefix, level=logging.WARNING)
    doc = seen.get("doc")
    if doc is None:
        return None
    # Also when nothing changed: a writer that died between the two files left report.md behind.
    store.put_if_newer(f"{prefix}/report.md", render_markdown(doc).encode(), MARKDOWN, doc.get("revision", 0))
    return store.location(f"{prefix}/report.md")


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "revision"}


def update_report(store: PreparedStore, prefix: str, section: str, data: dict[str, Any]) -> None:
    """Set a later step's section of an existing report. A missing report is logged, not fatal."""

    def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if doc is None else set_section(doc, section, data)

    if write_report(store, prefix, change) is None:
        log_step("report.not_updated", prefix=prefix, section=section, level=logging.WARNING)
