"""Publish each upload's lifecycle events (the outbox), best effort: never blocks or fails a step.

`publish_due(entry, ...)` publishes what the row has earned but not recorded (shared.domain.
lifecycle_events), in one request, then records the ids in the row with an ETag save. It is called
right after a step changes a row, and `publish_all_due` runs on every reconciler tick over the rows
with unpublished events, so a publish that failed (topic down, 403, timeout) is sent on a later
tick. A publish whose record could not be saved (the row changed meanwhile) is sent again with the
same ids: subscribers see one event per id.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from shared.domain import lifecycle_events as le
from shared.domain.ledger import Ledger, LedgerEntry, Status
from shared.domain.naming import dataset_prefix
from shared.logs import log_step

SWEEP_WINDOW = timedelta(days=7)
"""The tick's sweep looks at rows changed this recently: a topic configured later does not replay
every old upload's history, and an outage shorter than this loses nothing."""


class Publisher(Protocol):
    def send(self, events: list[le.LifecycleEvent]) -> None:
        """Publish in one request; raises if not accepted."""


def _report(store: Any, entry: LedgerEntry) -> str:
    path = f"{dataset_prefix(entry.key.dataset, entry.key.sha256)}/report.md"
    return store.location(path) if store is not None else path


def _send(publisher: Publisher, events: list[le.LifecycleEvent], cid: str) -> bool:
    try:
        publisher.send(events)
    except Exception as exc:  # never the step's problem: the next tick tries again
        log_step(
            "events.publish_failed",
            cid=cid or None,
            events=[e.type for e in events],
            error=f"{type(exc).__name__}: {exc}"[:500],
            level=logging.WARNING,
        )
        return False
    log_step("events.published", cid=cid or None, events=[e.type for e in events], subject=events[0].subject)
    return True


def publish_due(
    entry: LedgerEntry | None, ledger: Ledger, publisher: Publisher | None, store: Any = None, now: Any = None
) -> bool | None:
    """Publish the row's due events and record them. None: nothing to do (or another worker is
    publishing them); False: the publish failed and is retried on the next tick. Never raises.

    Two workers (a timer's sweep and a step, say) must not both send: the ids are first written to the
    row as being sent (`events_sending`, an ETag save: only one worker wins), then sent, then recorded.
    A worker that dies in between leaves a lease that expires after SENDING_LEASE: sent again then,
    with the same ids."""
    if entry is None or publisher is None:
        return None
    try:
        at = now or datetime.now(timezone.utc)
        events = le.due(entry, _report(store, entry), now=at)
        if not events:
            return None
        ids = [e.id for e in events]
        le.start_sending(entry, ids, at)
        if not ledger.save(entry):
            return None  # the row changed meanwhile: whoever changed it (or the next tick) publishes
        sent = _send(publisher, events, entry.cid)
        for _ in range(3):
            le.finish_sending(entry, ids if sent else [])
            if ledger.save(entry):
                return sent
            fresh = ledger.get(entry.key)  # a step saved the row meanwhile: record on its version
            if fresh is None:
                return sent
            entry = fresh
        return sent
    except Exception as exc:
        logging.getLogger("chatft").exception("publishing the events of %s failed", entry.key)
        log_step("events.error", cid=entry.cid, error=f"{type(exc).__name__}: {exc}", level=logging.WARNING)
        return False


def publish_key(ledger: Ledger, publisher: Publisher | None, key: Any, store: Any = None) -> bool | None:
    """`publish_due` for the row of `key`, read now (after another part of the app saved it)."""
    if publisher is None or key is None:
        return None
    try:
        entry = ledger.get(key)
    except Exception as exc:
        log_step("events.error", error=f"{type(exc).__name__}: {exc}", level=logging.WARNING)
        return False
    return publish_due(entry, ledger, publisher, store)


def publish_all_due(ledger: Ledger, publisher: Publisher | None, now: datetime, store: Any = None) -> int:
    """The tick's sweep: every recently changed row with due events. Stops at the first failed publish
    (the topic is likely down for all of them). Returns how many rows' events were published."""
    if publisher is None:
        return 0
    published = 0
    try:
        rows = ledger.with_status(*Status)
    except Exception as exc:
        log_step("events.error", error=f"{type(exc).__name__}: {exc}", level=logging.WARNING)
        return 0
    for entry in rows:
        changed = entry.updated_at or entry.claimed_at
        if changed is not None and now - changed > SWEEP_WINDOW:
            continue
        result = publish_due(entry, ledger, publisher, store, now)
        if result is False:
            break
        published += bool(result)
    return published


def publish_rejected(publisher: Publisher | None, **fields: Any) -> bool | None:
    """An upload that failed validation has no ledger row: publish its one event at once (id from the
    blob's SHA-256 and ETag, so a repeated trigger of the same upload sends the same event). Never raises."""
    if publisher is None:
        return None
    try:
        event = le.rejected(**fields)
    except Exception as exc:
        log_step("events.error", error=f"{type(exc).__name__}: {exc}", level=logging.WARNING)
        return False
    return _send(publisher, [event], event.cid)


def rejected_fields(
    dataset: str, sha256: str, upload: str, upload_etag: str, cid: str, report_path: str, report: Any
) -> dict[str, Any]:
    """What `publish_rejected` needs, from ingest's validation report."""
    totals = getattr(getattr(report, "errors", None), "totals", {}) or {}
    return {
        "dataset": dataset,
        "sha256": sha256,
        "upload": upload,
        "upload_etag": upload_etag,
        "cid": cid,
        "time": datetime.now(timezone.utc).isoformat(),
        "report": report_path,
        "errors": {
            getattr(code, "value", str(code)): n for code, n in sorted(totals.items(), key=lambda kv: str(kv[0]))
        },
    }
