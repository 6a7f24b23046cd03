"""Add a later step's outcome (job, model, endpoint) to an upload's report, next to its data."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from shared.chatdata.report import render_markdown
from shared.logs import log_step
from shared.storage import PreparedStore


def update_report(store: PreparedStore, prefix: str, section: str, data: dict[str, Any]) -> None:
    """Set report.json[section] = data and re-render report.md. A missing report is logged, not fatal."""
    rendered: dict[str, Any] = {}

    def change(raw: bytes) -> bytes:
        doc = orjson.loads(raw)
        doc[section] = data
        rendered["doc"] = doc
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    if not store.update_bytes(f"{prefix}/report.json", change, "application/json"):
        log_step("report.missing", prefix=prefix, section=section, level=logging.WARNING)
        return
    markdown = render_markdown(rendered["doc"]).encode()
    store.put_bytes(f"{prefix}/report.md", markdown, "text/markdown; charset=utf-8")
