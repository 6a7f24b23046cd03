"""One claim per file content (its SHA-256), so the same bytes under two names are stored and trained once.

The ledger is keyed by dataset (the blob's name) + SHA-256, so two names make two rows and two jobs. A
claim is keyed by the SHA-256 alone and created only if absent: `chatft upload` claims the bytes before it
writes a blob, ingest claims them before it submits. Whoever comes first holds them; any other name is
refused, pointing at the holder. A claim whose upload died, or whose blob is gone, holds nothing (`standing`).
Pure: the rules and the record; shared.azure.content_claims stores it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

SHA_METADATA = "chatft_sha256"
"""The blob metadata `chatft upload` writes: the bytes a blob holds, known without reading them."""
STALE_AFTER = timedelta(minutes=10)
"""An upload that showed no progress for this long died (a killed `chatft upload`): its claim holds nothing."""
HEARTBEAT = timedelta(minutes=1)
"""How often a running `chatft upload` says it is still going (well inside STALE_AFTER)."""


class ClaimState(str, Enum):
    UPLOADING = "uploading"
    """`chatft upload` is writing the blob (it says so every HEARTBEAT)."""
    UPLOADED = "uploaded"
    """The blob is committed; `blob_etag` is its version."""


@dataclass
class ContentClaim:
    sha256: str
    blob: str
    """The blob name in the upload container that holds (or is about to hold) these bytes."""
    state: ClaimState
    claim_id: str
    claimed_at: datetime
    updated_at: datetime
    blob_etag: str = ""
    by: str = ""
    """Who claimed: "chatft upload" or "ingest"."""
    version: str = ""
    """The stored claim's own ETag when read (not part of the record): writes are conditional on it."""

    def to_json(self) -> bytes:
        record = {k: v for k, v in asdict(self).items() if k != "version"}
        record.update(
            state=self.state.value, claimed_at=self.claimed_at.isoformat(), updated_at=self.updated_at.isoformat()
        )
        return json.dumps(record, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, version: str = "") -> ContentClaim | None:
        """The stored claim, or None when it is not one (a torn or hand-edited record holds nothing)."""
        try:
            raw = json.loads(data)
            claim = cls(
                sha256=str(raw["sha256"]),
                blob=str(raw["blob"]),
                state=ClaimState(raw["state"]),
                claim_id=str(raw["claim_id"]),
                claimed_at=datetime.fromisoformat(raw["claimed_at"]),
                updated_at=datetime.fromisoformat(raw["updated_at"]),
                blob_etag=str(raw.get("blob_etag") or ""),
                by=str(raw.get("by") or ""),
                version=version,
            )
        except (ValueError, TypeError, KeyError):
            return None
        aware = claim.claimed_at.tzinfo is not None and claim.updated_at.tzinfo is not None
        return claim if aware and claim.blob else None


@dataclass(frozen=True)
class BlobSeen:
    """The blob a claim names, as storage has it now."""

    etag: str
    sha256: str = ""
    """Our metadata, when `chatft upload` wrote it."""
    size: int = 0
    last_modified: datetime | None = None


@dataclass(frozen=True)
class Standing:
    holds: bool
    """The claim still holds the bytes: another name for them is refused."""
    uploaded: bool
    """Its blob is there (rather than still being uploaded)."""
    reason: str


def _ago(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60} min"


def standing(
    claim: ContentClaim, seen: BlobSeen | None, now: datetime, stale_after: timedelta = STALE_AFTER
) -> Standing:
    """Does `claim` still hold its bytes? Yes while its blob holds them (our SHA-256 metadata, or the version
    the claim recorded) or while its upload shows progress; no once the blob is gone or holds other bytes, or
    the upload stopped, so nothing blocks for ever."""
    if seen is not None and (seen.sha256 == claim.sha256 or (claim.blob_etag and seen.etag == claim.blob_etag)):
        return Standing(True, True, f"uploaded as {claim.blob}")
    idle = now - claim.updated_at
    if claim.state is ClaimState.UPLOADING:
        if idle < stale_after:
            return Standing(True, False, f"being uploaded as {claim.blob}, started {_ago(now - claim.claimed_at)} ago")
        return Standing(False, False, f"the upload as {claim.blob} stopped {_ago(idle)} ago")
    if seen is None:
        return Standing(False, False, f"{claim.blob} is gone")
    return Standing(False, False, f"{claim.blob} now holds other bytes")


@dataclass(frozen=True)
class ClaimResult:
    acquired: bool
    claim: ContentClaim
    """Ours when acquired; else the holder's."""
    reason: str
    uploaded: bool = False
    """Refused: the holder's blob is there (else it is still being uploaded)."""
    seen: BlobSeen | None = None
    """Refused: the holder's blob, as storage has it."""


class ContentClaims(Protocol):
    def claim(self, sha256: str, blob: str, *, by: str, now: datetime, blob_etag: str = "") -> ClaimResult:
        """Claim the bytes for `blob` (committed with `blob_etag`, or about to be uploaded): at most one name
        holds them. The same name always acquires (a redelivery, or a retry with --overwrite)."""
