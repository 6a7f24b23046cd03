"""Ledger rows as Table entities, both ways: the entity TableLedger writes, and a strict reading of whatever a row
holds, so a row that does not parse is named (keys and what is wrong) at the adapter's edge, never deep in a loop.

Values come back as azure-data-tables reads them (azure/data/tables/_deserialize.py, `_convert_to_entity`): str,
int, bool or float for untyped JSON, `EntityProperty` (a tuple) for Edm.Int64, `TablesEntityDatetime` for
Edm.DateTime, bytes for Edm.Binary. Anything may be there: a person or another tool can write any row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.domain.ledger import LedgerEntry, Status, UnreadableRow, UploadKey

_FIELDS = ("status", "attempt", "claim_id", "claimed_at", "upload_etag", "source", "cid", "job_name", "error", "deploy")
_KNOWN = frozenset({"PartitionKey", "RowKey", "updated_at", *_FIELDS})
_STATUSES = frozenset(s.value for s in Status)
_DEPLOY_TIMES = ("started_at", "deadline", "live_at", "updated_at")
_DEPLOY_TEXT = ("endpoint", "deployment", "step", "scoring_uri")
_DEPLOY_OBJECTS = ("retired", "kept", "smoke")
_RETIRED_TIMES = ("at", "confirmed_gone_at")
MAX_ATTEMPT = 2**31 - 1
"""An attempt is an Edm.Int32 as written (azure-data-tables `_to_entity_int32`)."""


class RowProblem(ValueError):
    """What is wrong with a row, as one short phrase naming the column."""


def to_entity(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "PartitionKey": entry.key.dataset,
        "RowKey": entry.key.sha256,
        "status": entry.status.value,
        "attempt": entry.attempt,
        "claim_id": entry.claim_id,
        "claimed_at": entry.claimed_at.isoformat(),
        "upload_etag": entry.upload_etag,
        "source": entry.source,
        "cid": entry.cid,
        "job_name": entry.job_name,
        "error": entry.error[:30000],
        "updated_at": (entry.updated_at or entry.claimed_at).isoformat(),
        "deploy": json.dumps(entry.deploy, sort_keys=True) if entry.deploy else "",
        **entry.extra,
    }


def from_entity(entity: Mapping[str, Any]) -> LedgerEntry:
    """The row as a LedgerEntry; RowProblem naming the first column that does not parse."""
    dataset, sha256 = entity.get("PartitionKey"), entity.get("RowKey")
    if not isinstance(dataset, str) or not isinstance(sha256, str):
        raise RowProblem("PartitionKey and RowKey must be text")
    updated = entity.get("updated_at")
    metadata = getattr(entity, "metadata", None)
    return LedgerEntry(
        key=UploadKey(dataset, sha256),
        status=_status(entity.get("status")),
        attempt=_attempt(entity.get("attempt")),
        claim_id=_text(entity, "claim_id", required=True),
        claimed_at=_moment(entity.get("claimed_at"), "claimed_at"),
        upload_etag=_text(entity, "upload_etag"),
        source=_text(entity, "source"),
        cid=_text(entity, "cid"),
        job_name=_text(entity, "job_name"),
        error=_text(entity, "error"),
        updated_at=None if updated in (None, "") else _moment(updated, "updated_at"),
        extra={k: v for k, v in entity.items() if k not in _KNOWN},
        deploy=_deploy(entity.get("deploy")),
        etag=str(metadata.get("etag") or "") if isinstance(metadata, Mapping) else "",
    )


def unreadable(entity: Mapping[str, Any], problem: str) -> UnreadableRow:
    return UnreadableRow(str(entity.get("PartitionKey", "")), str(entity.get("RowKey", "")), problem)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _status(value: Any) -> Status:
    if value is None:
        raise RowProblem("status: missing")
    if not isinstance(value, str) or value not in _STATUSES:
        raise RowProblem(f"status: {_shown(value)} is not a ledger status")
    return Status(value)


def _attempt(value: Any) -> int:
    number = value[0] if isinstance(value, tuple) and value else value  # Edm.Int64: EntityProperty(value, type)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_ATTEMPT:
        raise RowProblem(f"attempt: {_shown(value)} is not a whole number from 1 to {MAX_ATTEMPT}")
    return number


def _text(entity: Mapping[str, Any], column: str, *, required: bool = False) -> str:
    value = entity.get(column)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise RowProblem(f"{column}: " + ("missing" if value is None else f"{_shown(value)} is not text"))
    return value


def _moment(value: Any, column: str) -> datetime:
    """An ISO 8601 time with its zone (we write `datetime.isoformat()` of aware times), or an Edm.DateTime."""
    if value is None:
        raise RowProblem(f"{column}: missing")
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise RowProblem(f"{column}: {_shown(value)} is not an ISO 8601 time") from None
    else:
        raise RowProblem(f"{column}: {_shown(value)} is not an ISO 8601 time")
    if moment.utcoffset() is None:
        raise RowProblem(f"{column}: {_shown(value)} has no time zone")
    return moment


def _deploy(value: Any) -> dict[str, Any]:
    """The deployment's JSON object, with the values the flows read unguarded checked for their type."""
    if value in (None, ""):
        return {}
    if not isinstance(value, str):
        raise RowProblem(f"deploy: {_shown(value)} is not JSON text")
    try:
        deploy = json.loads(value)
    except (ValueError, RecursionError):
        raise RowProblem(f"deploy: {_shown(value)} is not valid JSON") from None
    if not isinstance(deploy, dict):
        raise RowProblem(f"deploy: {_shown(value)} is not a JSON object")
    for key in _DEPLOY_TIMES:
        if deploy.get(key) not in (None, ""):
            _moment(deploy[key], f"deploy.{key}")
    for key in _DEPLOY_TEXT:
        if deploy.get(key) is not None and not isinstance(deploy[key], str):
            raise RowProblem(f"deploy.{key}: {_shown(deploy[key])} is not text")
    for key in _DEPLOY_OBJECTS:
        if deploy.get(key) is not None and not isinstance(deploy[key], dict):
            raise RowProblem(f"deploy.{key}: {_shown(deploy[key])} is not a JSON object")
    retired = deploy.get("retired") or {}
    for key in _RETIRED_TIMES:
        if retired.get(key) not in (None, ""):
            _moment(retired[key], f"deploy.retired.{key}")
    return deploy
