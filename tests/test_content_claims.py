"""One claim per file content: who holds the bytes (pure rules), and the claim store on Azurite.

The store's conditional writes are the SDK's: `upload_blob(overwrite=False)` sends If-None-Match: *
(azure/storage/blob/_upload_helpers.py upload_block_blob) and a lost race is ResourceExistsError;
`etag=..., match_condition=MatchConditions.IfNotModified` sends If-Match (azure/storage/blob/_serialize.py
get_modify_conditions) and a lost race is 412 ConditionNotMet, ResourceModifiedError
(azure/storage/blob/_shared/response_handlers.py process_storage_error). The service's rules:
https://learn.microsoft.com/rest/api/storageservices/specifying-conditional-headers-for-blob-service-operations
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from shared.azure.content_claims import PREFIX, BlobContentClaims
from shared.domain.content_claim import STALE_AFTER, BlobSeen, ClaimState, ContentClaim, standing
from tests.concurrency import run_concurrently

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
SHA = hashlib.sha256(b"the bytes").hexdigest()


def claim(state: ClaimState, *, idle: timedelta = timedelta(0), blob_etag: str = "") -> ContentClaim:
    return ContentClaim(SHA, "first.jsonl", state, "c1", NOW - idle, NOW - idle, blob_etag, "test")


@pytest.mark.parametrize(
    ("record", "seen", "holds", "uploaded", "why"),
    [
        (claim(ClaimState.UPLOADED), BlobSeen("e1", SHA), True, True, "uploaded as first.jsonl"),
        (claim(ClaimState.UPLOADED, blob_etag="e1"), BlobSeen("e1"), True, True, "uploaded as"),
        (claim(ClaimState.UPLOADED, blob_etag="e1"), None, False, False, "first.jsonl is gone"),
        (claim(ClaimState.UPLOADED, blob_etag="e1"), BlobSeen("e2", "other"), False, False, "holds other bytes"),
        (claim(ClaimState.UPLOADING, idle=timedelta(minutes=2)), None, True, False, "being uploaded as first"),
        (claim(ClaimState.UPLOADING, idle=STALE_AFTER), None, False, False, "stopped 10 min ago"),
        (claim(ClaimState.UPLOADING, idle=STALE_AFTER), BlobSeen("e1", SHA), True, True, "uploaded as"),
    ],
    ids=["ours", "by-hand", "gone", "overwritten", "in-flight", "died", "died-after-commit"],
)
def test_a_claim_holds_while_its_blob_holds_the_bytes_or_its_upload_moves(record, seen, holds, uploaded, why) -> None:
    verdict = standing(record, seen, NOW)
    assert (verdict.holds, verdict.uploaded) == (holds, uploaded)
    assert why in verdict.reason


def test_a_claim_record_round_trips_and_garbage_is_no_claim() -> None:
    record = claim(ClaimState.UPLOADED, blob_etag="e1")
    assert ContentClaim.from_json(record.to_json(), "v1") == ContentClaim(**{**record.__dict__, "version": "v1"})
    for garbage in (b"", b"[]", b"{not json", b'{"sha256": "x"}', record.to_json().replace(b"+00:00", b"")):
        assert ContentClaim.from_json(garbage) is None


@pytest.fixture
def claims(blob_service, storage_env) -> BlobContentClaims:
    blob_service.create_container(storage_env["UPLOAD_CONTAINER"])
    return BlobContentClaims(blob_service, storage_env["PREPARED_CONTAINER"], storage_env["UPLOAD_CONTAINER"])


def test_ten_claims_at_once_leave_one_holder(claims) -> None:
    results, errors = run_concurrently(
        [lambda i=i: claims.claim(SHA, f"n{i}.jsonl", by="test", now=datetime.now(timezone.utc)) for i in range(10)]
    )
    assert errors == []
    [won] = [r for r in results if r.acquired]
    assert all(r.claim.blob == won.claim.blob and not r.uploaded for r in results if not r.acquired)
    again = claims.claim(SHA, won.claim.blob, by="test", now=datetime.now(timezone.utc))
    assert again.acquired, "the same name always acquires (a redelivery, a retry with --overwrite)"


def test_an_unreadable_claim_holds_nothing(claims, blob_service, storage_env) -> None:
    blob_service.create_container(storage_env["PREPARED_CONTAINER"])
    blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"{PREFIX}/{SHA}.json").upload_blob(b"{torn")
    taken = claims.claim(SHA, "mine.jsonl", by="test", now=datetime.now(timezone.utc))
    assert taken.acquired and "unreadable" in taken.reason


def test_a_claim_lapses_with_its_blob_and_a_late_release_leaves_the_new_holder(
    claims, blob_service, storage_env
) -> None:
    uploads = blob_service.get_container_client(storage_env["UPLOAD_CONTAINER"])
    etag = uploads.get_blob_client("first.jsonl").upload_blob(b"the bytes")["etag"]
    now = datetime.now(timezone.utc)
    first = claims.claim(SHA, "first.jsonl", by="ingest", now=now, blob_etag=etag)
    assert first.acquired and first.claim.state is ClaimState.UPLOADED
    copy = claims.claim(SHA, "copy.jsonl", by="ingest", now=now + STALE_AFTER * 10)
    assert not copy.acquired and copy.uploaded and copy.reason == "uploaded as first.jsonl"
    uploads.delete_blob("first.jsonl")
    taken = claims.claim(SHA, "copy.jsonl", by="chatft upload", now=now)
    assert taken.acquired and taken.reason == "taken over: first.jsonl is gone"
    claims.release(first.claim)  # a late release by the first holder leaves the new holder's claim
    assert claims.claim(SHA, "third.jsonl", by="chatft upload", now=now).claim.blob == "copy.jsonl"
    claims.release(taken.claim)
    assert claims.claim(SHA, "third.jsonl", by="chatft upload", now=now).acquired
