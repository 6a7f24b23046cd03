"""Every name a person has for an upload finds it; an ambiguous one says what to type instead."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.domain.ledger import LedgerEntry, Status, UploadKey
from shared.domain.upload_lookup import UploadNotFound, find_upload

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def entry(sha: str, source: str, job: str = "", endpoint: str = "", minutes: int = 0) -> LedgerEntry:
    return LedgerEntry(
        key=UploadKey("demo-chats", sha),
        status=Status.LIVE if endpoint else Status.SUBMITTED,
        attempt=1,
        claim_id="c",
        claimed_at=T0,
        upload_etag="e",
        source=source,
        cid=sha[:12],
        job_name=job,
        updated_at=T0 + timedelta(minutes=minutes),
        deploy={"endpoint": endpoint} if endpoint else {},
    )


A = entry("ab12cd" + "0" * 58, "chat-uploads/demo/chats.jsonl", "chatft-demo-a1", "cft-demo-a", minutes=1)
B = entry("ab12ff" + "1" * 58, "chat-uploads/other.jsonl", "chatft-other-a1")
C = entry("99" * 32, "chat-uploads/demo/chats.jsonl", "chatft-demo-c1", minutes=5)  # same name, new bytes


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("chatft-demo-a1", A),
        ("cft-demo-a", A),
        ("ab12ff", B),
        ("AB12CD", A),
        ("other.jsonl", B),
        ("chat-uploads/other.jsonl", B),
        ("demo/chats.jsonl", C),  # the newest upload under that name
    ],
)
def test_each_name_finds_its_upload(query: str, expected: LedgerEntry) -> None:
    assert find_upload([A, B, C], query) is expected


@pytest.mark.parametrize("query", ["ab12", "ab12c", "", "   ", "nothing", "zzzzzz"])
def test_too_short_or_unknown_is_an_error_saying_what_to_give(query: str) -> None:
    with pytest.raises(UploadNotFound, match="SHA-256"):
        find_upload([A, B, C], query)


def test_a_prefix_shared_by_two_files_lists_them() -> None:
    twin = entry("ab12cd" + "2" * 58, "chat-uploads/twin.jsonl")
    with pytest.raises(UploadNotFound, match="names 2 uploads") as caught:
        find_upload([A, twin], "ab12cd")
    assert "twin.jsonl" in str(caught.value) and "demo/chats.jsonl" in str(caught.value)


def test_the_same_bytes_under_two_names_ask_for_the_name_not_more_sha() -> None:
    """Was: "Give more of the SHA-256", which the whole SHA-256 cannot satisfy: both rows have it."""
    same = entry(A.key.sha256, "chat-uploads/copy.jsonl", "chatft-copy-a1")
    for query in (A.key.sha256, A.key.sha256[:8]):
        with pytest.raises(UploadNotFound) as caught:
            find_upload([A, same], query)
        message = str(caught.value)
        assert "demo/chats.jsonl" in message and "copy.jsonl" in message
        assert "more of the SHA-256" not in message and "blob name" in message
    assert find_upload([A, same], "copy.jsonl") is same
