"""The upload ledger: one row per distinct upload (dataset + content SHA-256), its status and job.

Triggers deliver at least once, concurrently and out of order. The ledger makes submission
happen once: a worker must *claim* an upload (an insert that conflicts if it exists) before it
submits. The rules deciding whether an existing row may be claimed are pure and live here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol


class Status(str, Enum):
    CLAIMED = "claimed"
    """A worker is submitting; stale after the claim timeout (it crashed)."""
    SUBMITTED = "submitted"
    QUEUED = "queued"
    """Validated and prepared, waiting for a training slot (MAX_ACTIVE_JOBS) or the budget (MONTHLY_BUDGET_USD):
    `extra["queued_at"]` keeps its place, `extra["queued_reason"]` says why; the reconciler submits it."""
    RETRYABLE = "retryable"
    """A transient failure; the host's retry may claim it again at once."""
    FAILED = "failed"
    """A permanent failure (submission or the job); a new upload (a new ETag) of the same bytes retries it."""
    CANCELED = "canceled"
    """Someone canceled the job; a new upload of the same bytes retries it."""
    REGISTERED = "registered"
    """The job succeeded and its model is registered; deployment is about to start."""
    DEPLOY_QUEUED = "deploy_queued"
    """Registered, waiting for room among the live endpoints (MAX_LIVE_ENDPOINTS) or the budget: nothing is
    created yet (`deploy["queued"]` says why and since when); the reconciler starts it when there is room."""
    DEPLOYING = "deploying"
    """The reconciler is moving the endpoint and deployment forward (`deploy["step"]`)."""
    LIVE = "live"
    """The endpoint answered the smoke test."""
    HELD = "held"
    """The model is registered, and a gate keeps it from deploying (its training's eval_loss is above
    DEPLOY_MAX_EVAL_LOSS, `deploy["gated"]`): `chatft redeploy --skip-gate` deploys it anyway."""
    DEPLOY_FAILED = "deploy_failed"
    """Deployment failed or ran out of time; what we created was deleted."""
    RETIRING = "retiring"
    """The janitor asked Azure ML to delete the idle endpoint; not yet seen gone (retried until it is)."""
    RETIRED = "retired"
    """The janitor removed the idle endpoint, and a later run confirmed it is gone."""


RETRY_ON_REUPLOAD = frozenset({Status.FAILED, Status.CANCELED, Status.DEPLOY_FAILED})
DEPLOYMENT_ACTIVE = (Status.REGISTERED, Status.DEPLOYING)
QUEUES = (Status.QUEUED, Status.DEPLOY_QUEUED)
"""Waiting for a guard (shared.domain.guards): nothing runs or bills for them yet."""


@dataclass(frozen=True)
class UploadKey:
    dataset: str
    sha256: str


@dataclass
class LedgerEntry:
    key: UploadKey
    status: Status
    attempt: int
    claim_id: str
    claimed_at: datetime
    upload_etag: str
    source: str
    cid: str
    job_name: str = ""
    error: str = ""
    updated_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)
    deploy: dict[str, Any] = field(default_factory=dict)
    """Deployment progress: model, endpoint, deployment, step, timestamps, smoke test."""
    etag: str = ""
    """The stored row's version when read; `Ledger.save` writes only if it is unchanged."""


@dataclass(frozen=True)
class UnreadableRow:
    """A stored row that does not parse as a LedgerEntry: its keys and what is wrong. Listings skip it (one bad row
    stops no loop) and `chatft status` shows it, so a person can fix or delete it."""

    dataset: str
    """The row's PartitionKey."""
    sha256: str
    """The row's RowKey."""
    problem: str


@dataclass(frozen=True)
class Claim:
    acquired: bool
    attempt: int
    reason: str
    claim_id: str = ""
    existing: LedgerEntry | None = None


@dataclass(frozen=True)
class ClaimDecision:
    acquire: bool
    attempt: int
    reason: str


def decide_claim(existing: LedgerEntry, upload_etag: str, now: datetime, stale_after: timedelta) -> ClaimDecision:
    """May a worker take over an existing ledger row? Same attempt = same deterministic job name."""
    status = existing.status
    if status is Status.QUEUED:
        return ClaimDecision(False, existing.attempt, f"queued ({existing.extra.get('queued_reason', 'waiting')})")
    if status not in RETRY_ON_REUPLOAD and status not in (Status.CLAIMED, Status.RETRYABLE):
        return ClaimDecision(False, existing.attempt, f"already submitted as job {existing.job_name} ({status.value})")
    if status is Status.CLAIMED:
        age = now - existing.claimed_at
        if age < stale_after:
            return ClaimDecision(False, existing.attempt, f"another worker claimed it {age.total_seconds():.0f}s ago")
        return ClaimDecision(True, existing.attempt, f"taking over a stale claim ({age.total_seconds():.0f}s old)")
    if status is Status.RETRYABLE:
        return ClaimDecision(True, existing.attempt, "retrying after a transient failure")
    if upload_etag and upload_etag != existing.upload_etag:
        return ClaimDecision(True, existing.attempt + 1, "re-uploaded after a permanent failure")
    return ClaimDecision(False, existing.attempt, f"{status.value}: {existing.error}")


STUDIO_URL = "studio_url"
"""`entry.extra` key: the job's Azure ML studio link, recorded at submission (and when the job ends, for rows
submitted before it was kept), so events and status can name it without asking the workspace."""


CANCELED_BY = "canceled_by"
"""`entry.extra` key: who canceled the upload (`chatft cancel` as whom, or JOB_MAX_HOURS)."""
CANCELED_AT = "canceled_at"
"""`entry.extra` key: when (ISO 8601); `entry.error` says why."""


def remember_studio_url(entry: LedgerEntry, url: str | None) -> None:
    if url:
        entry.extra[STUDIO_URL] = str(url)[:2048]


class Ledger(Protocol):
    def claim(
        self, key: UploadKey, *, upload_etag: str, source: str, cid: str, now: datetime, stale_after: timedelta
    ) -> Claim:
        """Insert-or-take-over with optimistic concurrency: at most one caller acquires."""

    def finish(
        self,
        key: UploadKey,
        claim_id: str,
        status: Status,
        now: datetime,
        *,
        job_name: str = "",
        error: str = "",
        studio_url: str | None = None,
    ) -> bool:
        """Record the outcome of a claim; False (and no write) if the claim was taken over meanwhile."""

    def get(self, key: UploadKey) -> LedgerEntry | None:
        """The row, or None when there is none or it is unreadable (logged)."""

    def save(self, entry: LedgerEntry) -> bool:
        """Write the whole entry if the row is unchanged since it was read (its etag); False otherwise."""

    def with_status(self, *statuses: Status) -> list[LedgerEntry]:
        """The readable rows with these statuses; an unreadable row is skipped (and logged), never raised."""

    def unreadable(self) -> list[UnreadableRow]:
        """Every row that does not parse, whatever its status."""


def change_and_save(
    ledger: Ledger, entry: LedgerEntry | None, change: Callable[[LedgerEntry], Any], tries: int = 3
) -> LedgerEntry | None:
    """Apply `change` and save with the row's ETag; on a conflict, read the row again and re-apply (a few
    times). The saved row, or None when the row is gone or kept changing."""
    current = entry
    for _ in range(tries):
        if current is None:
            return None
        change(current)
        if ledger.save(current):
            return current
        current = ledger.get(current.key)
    return None
