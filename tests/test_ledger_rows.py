"""The table adapter parses every ledger row at its edge: one that does not parse is skipped with one ERROR log
naming its PartitionKey and RowKey and what is wrong, never raised (the whole flow, with the reconciler, the janitor,
`chatft status` and `keep`, is tests/test_unreadable_rows.py).

Rows are written with the real azure-data-tables client into Azurite, so each garbage value comes back as the SDK
reads it (`_convert_to_entity` in azure/data/tables/_deserialize.py: an untyped JSON int is an int, a bool a
bool, an Edm.Int64 an `EntityProperty`, an Edm.DateTime a `TablesEntityDatetime`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.data.tables import EdmType, EntityProperty, UpdateMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.azure.table_ledger import TableLedger, table_client
from shared.domain.ledger import Status, UploadKey

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def healthy(name: str, status: str = "deploying") -> dict[str, Any]:
    """A row as TableLedger writes it (shared/azure/table_ledger.py, `_to_entity`), keyed by `name`'s SHA-256."""
    deploy = {"endpoint": f"cft-{name[:8]}", "step": "check_sku", "deadline": (NOW + timedelta(hours=2)).isoformat()}
    return {
        "PartitionKey": "chats",
        "RowKey": hashlib.sha256(name.encode()).hexdigest(),
        "status": status,
        "attempt": 1,
        "claim_id": "c1",
        "claimed_at": NOW.isoformat(),
        "upload_etag": '"0x1"',
        "source": f"up/{name}.jsonl",
        "cid": "abcdefabcdef",
        "job_name": f"chatft-{name}-a1",
        "error": "",
        "updated_at": NOW.isoformat(),
        "deploy": json.dumps(deploy),
    }


def _without(entity: dict[str, Any], column: str) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k != column}


GARBAGE: dict[str, dict[str, Any]] = {
    "attempt-abc": healthy("attempt-abc") | {"attempt": "abc"},
    "no-claimed-at": _without(healthy("no-claimed-at"), "claimed_at"),
    "deploy-not-json": healthy("deploy-not-json") | {"deploy": "{not json"},
    "claimed-yesterday": healthy("claimed-yesterday") | {"claimed_at": "yesterday"},
    "deploy-list": healthy("deploy-list") | {"deploy": "[1,2]"},
    "naive-time": healthy("naive-time") | {"claimed_at": "2026-11-22T12:00:00"},
    "status-bogus": healthy("status-bogus") | {"status": "bogus"},
    "no-status": _without(healthy("no-status"), "status"),
    "attempt-bool": healthy("attempt-bool", "submitted") | {"attempt": True},
    "updated-soon": healthy("updated-soon", "claimed") | {"updated_at": "soon"},
    "claim-id-int": healthy("claim-id-int", "retryable") | {"claim_id": 7},
    "live-at-garbage": healthy("live-at-garbage", "live")
    | {"deploy": json.dumps({"endpoint": "cft-garbage", "live_at": "yesterday"})},
    "retiring-deploy-list": healthy("retiring-deploy-list", "retiring") | {"deploy": "[]"},
    "registered-deadline": healthy("registered-deadline", "registered") | {"deploy": json.dumps({"deadline": 5})},
}
"""The issue's six (attempt="abc", no claimed_at, deploy="{not json", claimed_at="yesterday", deploy="[1,2]", a
time without a zone) and more, spread over the statuses each loop lists."""


@pytest.fixture
def ledger(storage_env) -> TableLedger:
    return TableLedger(table_client(f"ledger{uuid.uuid4().hex[:12]}"))


def test_a_claim_on_an_unreadable_row_is_refused_naming_the_row(ledger: TableLedger, caplog) -> None:
    """Never a second job for bytes whose row cannot be read: the claim is refused with what to fix."""
    entity = GARBAGE["attempt-abc"]
    ledger._table.upsert_entity(entity)
    key = UploadKey(entity["PartitionKey"], entity["RowKey"])
    caplog.set_level(logging.ERROR, logger="chatft")
    assert ledger.get(key) is None
    claim = ledger.claim(key, upload_etag='"0x2"', source="up/x.jsonl", cid="c", now=NOW, stale_after=timedelta(1))
    assert not claim.acquired and "unreadable" in claim.reason and "attempt" in claim.reason
    assert not ledger.finish(key, "c1", Status.SUBMITTED, NOW)
    assert ledger.with_status(*Status) == []
    [bad] = ledger.unreadable()
    assert (bad.dataset, bad.sha256) == (key.dataset, key.sha256) and "attempt" in bad.problem
    assert any(entity["RowKey"] in r.getMessage() for r in caplog.records)


_COLUMNS = (
    "status",
    "attempt",
    "claim_id",
    "claimed_at",
    "upload_etag",
    "source",
    "cid",
    "job_name",
    "error",
    "updated_at",
    "deploy",
)
_GOOD = healthy("good")
_VALUE = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.booleans(),
    st.sampled_from(["", "{}", "[]", "null", "1e999", "NaN", "2026-11-22T12:00:00", "2026-11-22T12:00:00+00:00"]),
    st.sampled_from([s.value for s in Status]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda n: EntityProperty(n, EdmType.INT64)),
    st.floats(allow_nan=True, allow_infinity=True),
)
_SPOILED = st.dictionaries(st.sampled_from(_COLUMNS), st.one_of(st.none(), _VALUE), max_size=4)
"""Columns changed from the healthy row: None removes the column, else a value of any type."""


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_SPOILED)
def test_the_adapter_never_raises_whatever_a_column_holds(ledger: TableLedger, spoiled: dict[str, Any]) -> None:
    """Every read (get, the listings, claim, finish) returns or skips; a row is unreadable exactly when listed so."""
    entity = {k: v for k, v in _GOOD.items() if spoiled.get(k, v) is not None} | {
        k: v for k, v in spoiled.items() if v is not None
    }
    ledger._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
    key = UploadKey(entity["PartitionKey"], entity["RowKey"])
    got = ledger.get(key)
    listed = ledger.with_status(*Status)
    bad = ledger.unreadable()
    assert (got is None) == bool(bad) == (not listed)
    assert got is not None or spoiled, "the healthy row reads"
    if got is not None:
        assert got.key == key and got.claimed_at.tzinfo is not None and isinstance(got.deploy, dict)
        assert got.updated_at is None or got.updated_at.tzinfo is not None
    claim = ledger.claim(key, upload_etag='"0x9"', source="up/x.jsonl", cid="c", now=NOW, stale_after=timedelta(1))
    assert isinstance(claim.reason, str)
    ledger.finish(key, claim.claim_id or "other", Status.FAILED, NOW, error="e")
