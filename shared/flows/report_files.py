"""An upload's report as files a person keeps: report.md, report.json, training.png and its lifecycle events.

The report lives in the prepared container next to the data (shared.flows.reports); the events are the
CloudEvents the upload's ledger row has earned (shared.domain.lifecycle_events), each with the id, source and
data the app publishes, so they read as a subscriber gets them whatever the target (Azure or `chatft dev`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.azure.storage import PreparedStore
from shared.domain import lifecycle_events as le
from shared.domain.ledger import LedgerEntry
from shared.domain.training import CHART_FILE

REPORT_FILES = ("report.md", "report.json", CHART_FILE)
EVENTS_FILE = "events.jsonl"
"""The upload's lifecycle events, one CloudEvent (JSON) per line: the name `chatft demo` saves them under."""


@dataclass(frozen=True)
class ReportFiles:
    files: dict[str, bytes]
    """Name -> content, for those of REPORT_FILES that exist."""
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def markdown(self) -> str | None:
        raw = self.files.get("report.md")
        return raw.decode("utf-8", errors="replace") if raw is not None else None


def cloud_event(event: le.LifecycleEvent, source: str) -> dict[str, Any]:
    """The CloudEvents 1.0 JSON form (structured mode) of a lifecycle event, as the topic delivers it."""
    doc: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": source,
        "type": event.type,
        "subject": event.subject,
        "time": event.time,
        "datacontenttype": "application/json",
        "data": event.data,
    }
    if event.cid:
        doc[le.CID_EXTENSION] = event.cid
    return doc


def read_report_files(store: PreparedStore, prefix: str, entry: LedgerEntry | None, source: str) -> ReportFiles:
    """What there is of the upload's report under `prefix`, and the events its row has earned (none without a
    row: a rejected upload's one event is published at validation and not kept)."""
    files = {name: raw for name in REPORT_FILES if (raw := store.read_bytes(f"{prefix}/{name}")) is not None}
    events = []
    if entry is not None:
        report = store.location(f"{prefix}/report.md")
        events = [cloud_event(e, source) for e in le.earned(entry, report)]
    return ReportFiles(files, events)
