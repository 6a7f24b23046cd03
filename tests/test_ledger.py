"""The ledger's claim rules (pure) and the Table Storage ledger on Azurite."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.azure.table_ledger import TableLedger, table_client
from shared.domain.ledger import LedgerEntry, Status, UploadKey, decide_claim
from tests.concurrency import run_concurrently

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
STALE = timedelta(minutes=15)
KEY = UploadKey("chats", "ab" * 32)


def entry(status: Status, *, age: timedelta = timedelta(0), etag: str = '"0x1"', attempt: int = 1) -> LedgerEntry:
    return LedgerEntry(
        KEY,
        status,
        attempt,
        "claim-1",
        NOW - age,
        etag,
        "up/chats.jsonl",
        "abababababab",
        job_name="job-a1",
        error="boom",
    )


@pytest.mark.parametrize(
    ("existing", "etag", "acquire", "attempt"),
    [
        (entry(Status.SUBMITTED), '"0x2"', False, 1),
        (entry(Status.CLAIMED, age=timedelta(minutes=1)), '"0x1"', False, 1),
        (entry(Status.CLAIMED, age=timedelta(hours=1)), '"0x1"', True, 1),
        (entry(Status.RETRYABLE), '"0x1"', True, 1),
        (entry(Status.FAILED), '"0x1"', False, 1),
        (entry(Status.FAILED, attempt=2), '"0x9"', True, 3),
    ],
    ids=["submitted", "fresh claim", "stale claim", "retryable", "failed, same upload", "failed, re-uploaded"],
)
def test_claim_rules(existing: LedgerEntry, etag: str, acquire: bool, attempt: int) -> None:
    decision = decide_claim(existing, etag, NOW, STALE)
    assert (decision.acquire, decision.attempt) == (acquire, attempt)
    assert decision.reason


@pytest.fixture
def ledger(storage_env) -> TableLedger:
    return TableLedger(table_client(f"ledger{uuid.uuid4().hex[:12]}"))


def claim(ledger: TableLedger, now: datetime = NOW, etag: str = '"0x1"'):
    return ledger.claim(KEY, upload_etag=etag, source="up/chats.jsonl", cid="abababababab", now=now, stale_after=STALE)


def test_first_claim_wins_and_the_second_is_refused(ledger: TableLedger) -> None:
    first = claim(ledger)
    second = claim(ledger)
    assert first.acquired and first.attempt == 1
    assert not second.acquired and "claimed" in second.reason
    stored = ledger.get(KEY)
    assert stored is not None and stored.status is Status.CLAIMED and stored.claim_id == first.claim_id


def test_finish_records_the_job_and_blocks_resubmission(ledger: TableLedger) -> None:
    first = claim(ledger)
    assert ledger.finish(KEY, first.claim_id, Status.SUBMITTED, NOW, job_name="chatft-chats-ab-a1")
    again = claim(ledger, NOW + timedelta(days=1), etag='"0x2"')
    assert not again.acquired and "chatft-chats-ab-a1" in again.reason
    assert ledger.get(KEY).job_name == "chatft-chats-ab-a1"


def test_a_taken_over_claim_cannot_finish(ledger: TableLedger) -> None:
    crashed = claim(ledger)
    later = claim(ledger, NOW + timedelta(hours=1))
    assert later.acquired and later.attempt == 1
    assert not ledger.finish(KEY, crashed.claim_id, Status.SUBMITTED, NOW, job_name="ghost")
    assert ledger.finish(KEY, later.claim_id, Status.FAILED, NOW, error="quota")
    stored = ledger.get(KEY)
    assert stored.status is Status.FAILED and stored.error == "quota" and stored.job_name == ""


def test_concurrent_claims_acquire_exactly_once(ledger: TableLedger) -> None:
    results, errors = run_concurrently([lambda: claim(ledger)] * 6)
    assert errors == [] and sum(r.acquired for r in results) == 1


def test_concurrent_takeovers_of_a_stale_claim_acquire_exactly_once(ledger: TableLedger) -> None:
    claim(ledger, NOW - timedelta(hours=2))
    results, errors = run_concurrently([lambda: claim(ledger)] * 5)
    assert errors == [] and sum(r.acquired for r in results) == 1
