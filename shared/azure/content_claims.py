"""Content claims on Blob Storage: `_claims/<sha256>.json` in the prepared container, written only if absent
(If-None-Match: *) or unchanged since read (If-Match), so two writers never both win.

The prepared container because both writers may write there (the app, and a person running `chatft upload`
with Storage Blob Data Contributor on it) and nothing lists it whole; dataset folders never start with "_"
(shared.domain.naming). Not the ledger table: every row there is an upload, and `chatft status` reads them all.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from shared.domain.content_claim import (
    HEARTBEAT,
    SHA_METADATA,
    STALE_AFTER,
    BlobSeen,
    ClaimResult,
    ClaimState,
    ContentClaim,
    Standing,
    standing,
)
from shared.logs import log_step

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

PREFIX = "_claims"
ATTEMPTS = 8


class ClaimLost(Exception):
    """Another upload took the claim over (this one showed no progress for STALE_AFTER)."""


class ClaimContended(Exception):
    """Claims on these bytes kept changing while we tried: a retry settles it."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class BlobContentClaims:
    """shared.domain.content_claim.ContentClaims on the prepared container; reads the upload container to tell
    whether the blob a claim names still holds the bytes."""

    def __init__(self, service: BlobServiceClient, prepared_container: str, upload_container: str) -> None:
        self._claims = service.get_container_client(prepared_container)
        self._uploads = service.get_container_client(upload_container)

    def claim(self, sha256: str, blob: str, *, by: str, now: datetime, blob_etag: str = "") -> ClaimResult:
        state = ClaimState.UPLOADED if blob_etag else ClaimState.UPLOADING
        mine = ContentClaim(sha256, blob, state, uuid.uuid4().hex, now, now, _bare(blob_etag), by)
        for _ in range(ATTEMPTS):
            current, version = self._read(sha256)
            if version is None:  # no claim yet
                if self._write(mine, None):
                    return ClaimResult(True, mine, "first claim")
                continue
            if current is not None and current.blob == blob:
                held = _same_name(current, mine)
                if held is current or self._write(held, version):
                    return ClaimResult(True, held, f"already claimed for {blob}")
                continue
            seen = self.seen(current.blob) if current is not None else None
            verdict = (
                standing(current, seen, now)
                if current is not None
                else Standing(False, False, "the stored claim is unreadable")
            )
            if current is not None and verdict.holds:
                return ClaimResult(False, current, verdict.reason, verdict.uploaded, seen)
            if self._write(mine, version):
                log_step("claim.taken_over", cid=sha256[:12], blob=blob, by=by, reason=verdict.reason)
                return ClaimResult(True, mine, f"taken over: {verdict.reason}")
        raise ClaimContended(f"claims on the bytes {sha256[:12]} kept changing: try again")

    def update(self, claim: ContentClaim, change: Callable[[ContentClaim], ContentClaim]) -> ContentClaim | None:
        """Apply `change` to our claim and store it; None if the claim is no longer ours (taken over, gone)."""
        current = claim
        for _ in range(ATTEMPTS):
            changed = change(current)
            if self._write(changed, current.version):
                return changed
            found, _ = self._read(claim.sha256)
            if found is None or found.claim_id != claim.claim_id:
                return None
            current = found
        raise ClaimContended(f"the claim on the bytes {claim.sha256[:12]} kept changing: try again")

    def release(self, claim: ContentClaim) -> None:
        """Delete our claim (an upload that failed holds nothing); another's is left alone."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        current: ContentClaim | None = claim
        for _ in range(ATTEMPTS):
            if current is None or current.claim_id != claim.claim_id:
                return
            try:
                self._client(claim.sha256).delete_blob(
                    etag=current.version, match_condition=MatchConditions.IfNotModified
                )
                return
            except ResourceNotFoundError:
                return
            except ResourceModifiedError:
                current, _ = self._read(claim.sha256)

    def seen(self, blob: str) -> BlobSeen | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self._uploads.get_blob_client(blob).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return BlobSeen(
            _bare(str(props.etag or "")),
            (props.metadata or {}).get(SHA_METADATA, ""),
            int(props.size or 0),
            props.last_modified,
        )

    def _client(self, sha256: str) -> Any:
        return self._claims.get_blob_client(f"{PREFIX}/{sha256}.json")

    def _read(self, sha256: str) -> tuple[ContentClaim | None, str | None]:
        """(claim, its ETag); (None, ETag) for an unreadable record; (None, None) when there is none."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            download = self._client(sha256).download_blob()
            data = download.readall()
        except ResourceNotFoundError:
            return None, None
        version = str(download.properties.etag)
        return ContentClaim.from_json(data, version), version

    def _write(self, claim: ContentClaim, version: str | None) -> bool:
        """Create (version None: only if absent) or replace (only if still `version`); False if another
        writer got there first. Sets the claim's new version."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        conditions: dict[str, Any] = (
            {"overwrite": False}
            if version is None
            else {"overwrite": True, "etag": version, "match_condition": MatchConditions.IfNotModified}
        )
        settings = ContentSettings(content_type="application/json")
        for _ in range(2):
            try:
                written = self._client(claim.sha256).upload_blob(
                    claim.to_json(), content_settings=settings, **conditions
                )
            except (ResourceExistsError, ResourceModifiedError):
                return False
            except ResourceNotFoundError as exc:
                if getattr(exc, "error_code", None) != "ContainerNotFound":
                    return False
                from shared.azure.storage import ensure_container

                ensure_container(self._claims)  # a fresh local storage only: azd creates the container
                continue
            claim.version = str(written.get("etag") or "")
            return True
        return False


def _same_name(current: ContentClaim, mine: ContentClaim) -> ContentClaim:
    """A claim for the same name again. Ingest records the committed blob's version (the claim stays whoever's
    it was); `chatft upload` (a retry with --overwrite) takes the claim over while it writes."""
    if mine.state is ClaimState.UPLOADED:
        if current.state is ClaimState.UPLOADED and current.blob_etag == mine.blob_etag:
            return current
        return replace(current, state=ClaimState.UPLOADED, blob_etag=mine.blob_etag, updated_at=mine.updated_at)
    return replace(mine, blob_etag=current.blob_etag)


def _bare(etag: str) -> str:
    return etag.strip('"')


class HeldClaim:
    """The claim `chatft upload` holds while it writes the blob: it names each blob name before trying it, says
    it is alive as the bytes go up (every HEARTBEAT), records the committed blob, or lets go on a failure."""

    def __init__(self, claims: BlobContentClaims, claim: ContentClaim, now: Callable[[], datetime] = _utcnow) -> None:
        self._claims, self.claim, self._now = claims, claim, now
        self._beat_at = time.monotonic()
        self._beating = threading.Lock()

    def naming(self, blob: str) -> None:
        if blob != self.claim.blob:
            self._change(lambda c: replace(c, blob=blob, updated_at=self._now()))

    def beat(self) -> None:
        """Called from the SDK's progress hook (any upload thread); raising there stops the upload before its
        block list is committed."""
        with self._beating:
            if time.monotonic() - self._beat_at >= HEARTBEAT.total_seconds():
                self._beat_at = time.monotonic()
                self._change(lambda c: replace(c, updated_at=self._now()))

    def uploaded(self, blob: str, etag: str) -> None:
        """Best effort: the blob is there either way, and its SHA-256 metadata already tells a later look."""
        with contextlib.suppress(Exception):
            self._claims.update(
                self.claim,
                lambda c: replace(
                    c, blob=blob, state=ClaimState.UPLOADED, blob_etag=_bare(etag), updated_at=self._now()
                ),
            )

    def release(self) -> None:
        with contextlib.suppress(Exception):  # an unreleased claim expires after STALE_AFTER anyway
            self._claims.release(self.claim)

    def _change(self, change: Callable[[ContentClaim], ContentClaim]) -> None:
        kept = self._claims.update(self.claim, change)
        if kept is None:
            minutes = int(STALE_AFTER.total_seconds() // 60)
            raise ClaimLost(
                f"another upload took over these bytes (this one showed no progress for {minutes} min); "
                "nothing was stored: `chatft status` shows the other"
            )
        self.claim = kept
