"""The lifecycle events an upload has earned, read off its ledger row: pure, no I/O.

Level-triggered (an outbox): which events an upload has earned follows from its row as it is now;
the row records the ids of those already published (`extra["events"]`), and whatever is earned
but not recorded is due. Every event id is deterministic (a uuid5 of the subject, the type and
what makes that occurrence unique: the attempt, the model, the deployment's start, the retirement
time, the blob's ETag), so publishing an event again after a lost acknowledgement sends the same
id, which subscribers (and Event Grid's own deduplication) treat as one event.

An occurrence the row no longer shows (an attempt's failure after the same bytes were uploaded
again, a deployment's `live` after it was redeployed) is no longer earned; it was due, and
published, while the row showed it, unless the topic was down for all that time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain.job_queue import QUEUED_AT, QUEUED_REASON
from shared.domain.ledger import CANCELED_AT, CANCELED_BY, STUDIO_URL, LedgerEntry, Status
from shared.domain.naming import dataset_prefix

REJECTED = "chatft.upload.rejected"
SUBMITTED = "chatft.job.submitted"
JOB_FAILED = "chatft.job.failed"
JOB_CANCELED = "chatft.job.canceled"
REGISTERED = "chatft.model.registered"
LIVE = "chatft.endpoint.live"
DEPLOY_FAILED = "chatft.deployment.failed"
RETIRED = "chatft.endpoint.retired"
REDEPLOYED = "chatft.endpoint.redeployed"
JOB_QUEUED = "chatft.job.queued"
BUDGET_WARNING = "chatft.budget.warning"
"""Not an upload's: the month's estimated spend reached 80 % of MONTHLY_BUDGET_USD (shared.flows.budget)."""
TYPES = (
    REJECTED,
    JOB_QUEUED,
    SUBMITTED,
    JOB_FAILED,
    JOB_CANCELED,
    REGISTERED,
    LIVE,
    DEPLOY_FAILED,
    RETIRED,
    REDEPLOYED,
    BUDGET_WARNING,
)

PUBLISHED = "events"
"""`entry.extra` key: the ids of the row's events already published, space-separated (a Table column)."""
CID_EXTENSION = "chatftcid"
"""The CloudEvents extension attribute carrying the correlation id (lower-case alphanumeric, as the spec asks)."""
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://chatft/events")

_HAS_MODEL = (
    Status.REGISTERED,
    Status.DEPLOY_QUEUED,
    Status.DEPLOYING,
    Status.LIVE,
    Status.HELD,
    Status.DEPLOY_FAILED,
    Status.RETIRING,
    Status.RETIRED,
)
_WAS_SUBMITTED = (Status.SUBMITTED, Status.CANCELED, *_HAS_MODEL)


@dataclass(frozen=True)
class LifecycleEvent:
    type: str
    subject: str
    """`<dataset>/<sha256>`: one upload."""
    id: str
    time: str
    """ISO 8601, from the row (when it happened, as far as the row knows)."""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def cid(self) -> str:
        return str(self.data.get("cid") or "")


def event_source(workspace_resource_id: str) -> str:
    """`/chatft/<workspace name>`: which chatft (one per workspace) sent it."""
    return f"/chatft/{workspace_resource_id.rstrip('/').rsplit('/', 1)[-1]}"


def subject_of(dataset: str, sha256: str) -> str:
    return f"{dataset}/{sha256}"


def event_id(subject: str, kind: str, occurrence: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{subject}\n{kind}\n{occurrence}"))


def _event(entry: LedgerEntry, kind: str, occurrence: str, time: Any, report: str, **data: Any) -> LifecycleEvent:
    subject = subject_of(entry.key.dataset, entry.key.sha256)
    base = {
        "cid": entry.cid,
        "dataset": entry.key.dataset,
        "sha256": entry.key.sha256,
        "upload": entry.source,
        "attempt": entry.attempt,
        "report": report,
    }
    if data.get("job_name") and entry.extra.get(STUDIO_URL):
        base["studio_url"] = entry.extra[STUDIO_URL]
    when = time.isoformat() if hasattr(time, "isoformat") else str(time or "")
    return LifecycleEvent(kind, subject, event_id(subject, kind, occurrence), when or _when(entry), {**base, **data})


def _when(entry: LedgerEntry) -> str:
    return (entry.updated_at or entry.claimed_at).isoformat()


def job_failure_phase(entry: LedgerEntry) -> str:
    """Where a `failed` upload failed: `submission` (no job ran), `training` or `registration`."""
    if entry.deploy.get("registration_failed"):
        return "registration"
    if entry.error.startswith("the fine-tuning job was"):
        return "training"
    return "submission"


def earned(entry: LedgerEntry, report: str = "") -> list[LifecycleEvent]:
    """Every event the row shows has happened, in the order they happened. `report` names the
    upload's report (e.g. `chat-prepared/<dataset>/<sha16>/report.md`)."""
    report = report or f"{dataset_prefix(entry.key.dataset, entry.key.sha256)}/report.md"
    status, d = entry.status, entry.deploy
    events: list[LifecycleEvent] = []
    phase = job_failure_phase(entry) if status is Status.FAILED else ""
    queued_at = entry.extra.get(QUEUED_AT)
    if queued_at and (status is Status.QUEUED or entry.job_name or status is Status.CANCELED):
        events.append(
            _event(
                entry,
                JOB_QUEUED,
                f"{entry.attempt} {queued_at}",
                queued_at,
                report,
                reason=entry.extra.get(QUEUED_REASON),
            )
        )
    if entry.job_name and (status in _WAS_SUBMITTED or phase in ("training", "registration")):
        events.append(_event(entry, SUBMITTED, str(entry.attempt), entry.claimed_at, report, job_name=entry.job_name))
    if status is Status.FAILED:
        job = entry.job_name if phase != "submission" else None
        events.append(
            _event(
                entry,
                JOB_FAILED,
                f"{entry.attempt}",
                entry.updated_at,
                report,
                job_name=job,
                phase=phase,
                error=entry.error,
            )
        )
    if status is Status.CANCELED:
        events.append(
            _event(
                entry,
                JOB_CANCELED,
                str(entry.attempt),
                entry.extra.get(CANCELED_AT) or entry.updated_at,
                report,
                job_name=entry.job_name or None,
                error=entry.error,
                by=entry.extra.get(CANCELED_BY) or "Azure ML (the job was canceled outside chatft)",
                phase="queue" if not entry.job_name else "training",
            )
        )
    if status not in _HAS_MODEL or not d.get("model_id"):
        return events
    model = {
        "job_name": entry.job_name,
        "model_id": d.get("model_id"),
        "model": f"{d.get('model_name')}:{d.get('model_version')}",
        "base_model": d.get("base_model"),
        "endpoint": d.get("endpoint"),
    }
    started = str(d.get("started_at") or "")
    events.append(_event(entry, REGISTERED, str(d["model_id"]), started, report, **model))
    after = d.get("redeployed_after")
    if isinstance(after, dict):
        if after.get("at") and after.get("reason"):  # the previous deployment was retired
            events.append(_retired(entry, after, report, model))
        events.append(
            _event(
                entry,
                REDEPLOYED,
                started,
                started,
                report,
                **model,
                by=d.get("redeployed_by") or "a new upload of the same file",
                after=after.get("reason") or after.get("status"),
            )
        )
    if status is Status.LIVE or (status in (Status.RETIRING, Status.RETIRED) and d.get("live_at")):
        smoke = d.get("smoke") or {}
        events.append(
            _event(
                entry,
                LIVE,
                started,
                d.get("live_at"),
                report,
                **model,
                deployment=d.get("deployment"),
                instance_type=d.get("instance_type") or None,
                scoring_uri=d.get("scoring_uri"),
                smoke_latency_ms=smoke.get("latency_ms"),
                evaluation=_figures(d),
            )
        )
    gated = d.get("gated") if isinstance(d.get("gated"), dict) else {}
    if status is Status.DEPLOY_FAILED or (gated.get("reason") and status in (Status.HELD, *_GATE_RETIRED)):
        phase = str(gated.get("phase") or "deployment") if status is not Status.DEPLOY_FAILED else "deployment"
        events.append(
            _event(
                entry,
                DEPLOY_FAILED,
                started,
                gated.get("at") if status is not Status.DEPLOY_FAILED else d.get("updated_at"),
                report,
                **model,
                deployment=d.get("deployment"),
                phase=phase,
                error=gated.get("reason") if status is not Status.DEPLOY_FAILED else entry.error or d.get("error"),
                evaluation=_figures(d),
                cleanup=_cleanup(d, phase),
            )
        )
    if status is Status.RETIRED and isinstance(d.get("retired"), dict):
        events.append(_retired(entry, d["retired"], report, model))
    return events


_GATE_RETIRED = (Status.RETIRING, Status.RETIRED)
"""A deployment the evaluation gate stopped is retired the janitor's way: these rows earn its `deployment.failed`."""


def _figures(d: dict[str, Any]) -> dict[str, Any] | None:
    """The evaluation's figures (shared.domain.evaluation.figures) on the row, when it finished."""
    figures = d.get("evaluation")
    return dict(figures) if isinstance(figures, dict) and figures.get("token_f1") is not None else None


def _cleanup(d: dict[str, Any], phase: str) -> str:
    if phase == "training":
        return "nothing was created: the model stays registered"
    if phase == "evaluation":
        return f"endpoint {d.get('endpoint')} retired (delete asked at once); the model stays registered"
    return f"endpoint {d.get('endpoint')} deleted so nothing stays billable"


def _retired(entry: LedgerEntry, retired: dict[str, Any], report: str, model: dict[str, Any]) -> LifecycleEvent:
    return _event(
        entry,
        RETIRED,
        str(retired.get("at")),
        retired.get("confirmed_gone_at") or retired.get("at"),
        report,
        **model,
        reason=retired.get("reason"),
        by=retired.get("by") or "the idle-endpoint janitor",
        idle_minutes_measured=retired.get("idle_minutes_measured"),
        age_minutes=retired.get("age_minutes"),
    )


def published(entry: LedgerEntry) -> list[str]:
    return str(entry.extra.get(PUBLISHED) or "").split()


SENDING = "events_sending"
"""`entry.extra` key: `<ISO time> <id> <id>...`, the ids a worker is publishing now (its lease)."""
SENDING_LEASE = timedelta(minutes=2)


def sending(entry: LedgerEntry, now: datetime) -> list[str]:
    """The ids another worker is publishing, while its lease lasts."""
    parts = str(entry.extra.get(SENDING) or "").split()
    if not parts:
        return []
    try:
        since = datetime.fromisoformat(parts[0])
    except ValueError:
        return []
    return parts[1:] if now - since < SENDING_LEASE else []


def due(entry: LedgerEntry, report: str = "", now: datetime | None = None) -> list[LifecycleEvent]:
    """The earned events not yet recorded as published (nor being published, when `now` is given), in order."""
    done = set(published(entry)) | (set(sending(entry, now)) if now is not None else set())
    return [e for e in earned(entry, report) if e.id not in done]


def start_sending(entry: LedgerEntry, ids: list[str], now: datetime) -> None:
    entry.extra[SENDING] = " ".join([now.isoformat(), *ids])


def finish_sending(entry: LedgerEntry, ids: list[str]) -> None:
    """Record `ids` as published (none if the publish failed) and end the lease."""
    entry.extra[SENDING] = ""
    record(entry, ids)


def record(entry: LedgerEntry, ids: list[str]) -> None:
    """Record `ids` as published, keeping only ids the row still earns (so the column stays small)."""
    still = {e.id for e in earned(entry)}
    kept = [i for i in dict.fromkeys([*published(entry), *ids]) if i in still]
    entry.extra[PUBLISHED] = " ".join(kept)


def budget_warning(*, month: str, spent_usd: float, budget_usd: float, time: str, uploads: int) -> LifecycleEvent:
    """The month's one warning (its id is the month's): the estimate reached WARN_AT of the budget."""
    subject = f"budget/{month}"
    return LifecycleEvent(
        BUDGET_WARNING,
        subject,
        event_id(subject, BUDGET_WARNING, month),
        time,
        {
            "month": month,
            "estimated_spend_usd": round(spent_usd, 2),
            "budget_usd": budget_usd,
            "share": round(spent_usd / budget_usd, 3),
            "uploads": uploads,
            "note": "an estimate from list prices (GPU_HOURLY_PRICE_USD, the endpoint sizes' list prices): at 100 % new "
            "jobs and deployments wait; live endpoints are not touched",
        },
    )


def rejected(
    *,
    dataset: str,
    sha256: str,
    upload: str,
    upload_etag: str,
    cid: str,
    time: str,
    report: str,
    errors: dict[str, int],
) -> LifecycleEvent:
    """An upload that failed validation (no ledger row): one event per upload of the blob (its ETag)."""
    subject = subject_of(dataset, sha256)
    return LifecycleEvent(
        REJECTED,
        subject,
        event_id(subject, REJECTED, upload_etag or time),
        time,
        {
            "cid": cid,
            "dataset": dataset,
            "sha256": sha256,
            "upload": upload,
            "report": report,
            "errors": errors,
            "error": "the upload failed validation: "
            + (", ".join(f"{c} {n}" for c, n in sorted(errors.items())) or "see the report"),
        },
    )
