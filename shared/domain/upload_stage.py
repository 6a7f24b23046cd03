"""Where an upload is in its life, from its ledger row and its report: the view `chatft status` and
`chatft upload --follow` show.

The ledger is the truth for everything after validation; the report is the only trace of a rejected
upload (it never gets a ledger row) and holds what the ledger does not (the job's studio link, the
validation counts). Pure: callers read the row and the report and pass them in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from shared.domain import upload_history
from shared.domain.finetune.choices import UploadChoices
from shared.domain.ledger import RETRY_ON_REUPLOAD, STUDIO_URL, LedgerEntry, Status
from shared.domain.moments import aware_time


class Stage(str, Enum):
    UPLOADED = "uploaded"
    """In the upload container; the ingest function has not validated it yet."""
    REJECTED = "rejected"
    VALIDATED = "validated"
    """Accepted; being submitted (or not submitted at all: ML_BACKEND=none)."""
    QUEUED = "queued"
    """Validated and prepared, waiting for a training slot (MAX_ACTIVE_JOBS) or the budget; `detail` says its place."""
    SUBMITTED = "submitted"
    TRAINING = "training"
    """The job exists and has not ended (the ledger says `submitted`)."""
    REGISTERED = "registered"
    DEPLOY_QUEUED = "deploy_queued"
    """Registered, waiting for room among the live endpoints (MAX_LIVE_ENDPOINTS) or the budget."""
    DEPLOYING = "deploying"
    LIVE = "live"
    HELD = "held"
    """Registered, not deployed: a gate (DEPLOY_MAX_EVAL_LOSS) holds it until `chatft redeploy --skip-gate`."""
    RETIRING = "retiring"
    RETIRED = "retired"
    FAILED = "failed"
    CANCELED = "canceled"
    DEPLOY_FAILED = "deploy_failed"
    UNREADABLE = "unreadable"
    """Its ledger row does not parse (a person or another tool wrote it): every flow skips it until it is fixed."""
    IGNORED = "ignored"
    """A blob in the upload container whose name does not end in .jsonl: the ingest function leaves it alone."""


POISON_AFTER = 5
"""Failed deliveries after which the host gives up on a blob (host.json extensions.blobs.poisonBlobThreshold,
default 5) and moves it to the `webjobs-blobtrigger-poison` queue; the local runner counts the same."""

FAILURES = frozenset({Stage.REJECTED, Stage.FAILED, Stage.CANCELED, Stage.DEPLOY_FAILED, Stage.UNREADABLE})
"""Stages an upload does not leave by itself (a new upload of the same file retries)."""
_AFTER_JOB = (Status.SUBMITTED, Status.REGISTERED, Status.DEPLOYING, Status.LIVE, Status.RETIRING, Status.RETIRED)
_AFTER_DEPLOY_START = (Status.DEPLOYING, Status.LIVE, Status.RETIRING, Status.RETIRED, Status.DEPLOY_FAILED)


@dataclass(frozen=True)
class Milestone:
    """A stage the upload has reached, with the one line a person wants about it."""

    stage: Stage
    detail: str
    at: datetime | None = None
    """When the upload reached it, if the ledger or the report says (shared.flows.upload_status.with_times)."""


@dataclass(frozen=True)
class UploadView:
    name: str
    """The blob name in the upload container."""
    dataset: str
    sha256: str
    stage: Stage
    detail: str
    milestones: tuple[Milestone, ...]
    """Every stage reached so far, in order; the last is `stage`."""
    status: str = ""
    """The ledger status, or "" when there is no ledger row (rejected, not yet validated, not submitted)."""
    since: datetime | None = None
    """When it entered the current stage (for `deploying`: the current step), if known."""
    uploaded_at: datetime | None = None
    job: str = ""
    studio_url: str = ""
    model: str = ""
    endpoint: str = ""
    step: str = ""
    scoring_uri: str = ""
    error: str = ""
    report: str = ""
    """Where the report is (<prepared container>/<dataset>/<sha16>/report.md); "" if there is none yet."""
    not_submitted: bool = False
    """Validated, and the settings say not to submit (ML_BACKEND=none): nothing more will happen."""
    token_f1: float | None = None
    """The endpoint's token F1 on held-out conversations (shared.domain.evaluation), once evaluated."""
    latency_p95_ms: int | None = None
    evaluation: str = ""
    """The evaluation's figures in one line, or how far it is; "" before it starts."""
    queue_place: int | None = None
    """A queued upload's place in the queue (1: next to start)."""
    history: tuple[str, ...] = ()
    """What was done to its endpoints (keep, release, retire and why, redeploy), oldest first (upload_history)."""
    progress: str = ""
    """While it trains: the job's newest step or epoch and training loss (shared.domain.training_progress)."""
    choices: str = ""
    """What this upload chose over the app's settings (model, epochs, learning rate, suffix), in one line."""

    @property
    def final(self) -> bool:
        """Nothing more happens without a person: live, held, retired, a failure, or not submitted by choice."""
        ended = (Stage.LIVE, Stage.HELD, Stage.RETIRED, Stage.IGNORED)
        return self.stage in FAILURES or self.stage in ended or self.not_submitted

    @property
    def failed(self) -> bool:
        return self.stage in FAILURES


JSON_KEYS = (
    "name",
    "dataset",
    "sha256",
    "stage",
    "status",
    "detail",
    "error",
    "job",
    "studio_url",
    "progress",
    "model",
    "endpoint",
    "step",
    "scoring_uri",
    "token_f1",
    "latency_p95_ms",
    "choices",
    "report",
    "uploaded_at",
    "stage_since",
    "stage_age_seconds",
    "upload_age_seconds",
)
"""`chatft status --json`: exactly these keys per upload, always present (null or "" when unknown)."""


def as_json(view: UploadView, now: datetime) -> dict[str, Any]:
    """The stable machine-readable form (JSON_KEYS); times are ISO 8601, ages whole seconds."""

    def age(at: datetime | None) -> int | None:
        return None if at is None else max(0, int((now - at).total_seconds()))

    return {
        "name": view.name,
        "dataset": view.dataset,
        "sha256": view.sha256,
        "stage": view.stage.value,
        "status": view.status or None,
        "detail": view.detail,
        "error": view.error or None,
        "job": view.job or None,
        "studio_url": view.studio_url or None,
        "progress": view.progress or None,
        "model": view.model or None,
        "endpoint": view.endpoint or None,
        "step": view.step or None,
        "scoring_uri": view.scoring_uri or None,
        "token_f1": view.token_f1,
        "latency_p95_ms": view.latency_p95_ms,
        "choices": view.choices or None,
        "report": view.report or None,
        "uploaded_at": view.uploaded_at.isoformat() if view.uploaded_at else None,
        "stage_since": view.since.isoformat() if view.since else None,
        "stage_age_seconds": age(view.since),
        "upload_age_seconds": age(view.uploaded_at),
    }


def _section(report: dict[str, Any] | None, name: str) -> dict[str, Any]:
    value = (report or {}).get(name)
    return value if isinstance(value, dict) else {}


def _validated_line(report: dict[str, Any] | None) -> str:
    if not report:
        return "accepted by the ingest function"
    splits = report.get("splits") or {}
    errors = sum((report.get("error_totals") or {}).values())
    warnings = sum((report.get("warning_totals") or {}).values())
    return (
        f"{report.get('conversations', '?')} conversations (train {splits.get('train', '?')}, "
        f"validation {splits.get('validation', '?')}, test {splits.get('test', '?')}), "
        f"{errors} errors, {warnings} warnings"
    )


def _rejected_line(report: dict[str, Any], where: str) -> str:
    totals = report.get("error_totals") or {}
    codes = ", ".join(f"{code} {n}" for code, n in sorted(totals.items()))
    return f"{sum(totals.values())} errors ({codes or 'see the report'}); report {where or '(not written yet)'}"


@dataclass(frozen=True)
class IngestFailure:
    """One failed delivery of the upload to the ingest function (its note at <dataset>/_failed/<time>.json)."""

    at: datetime | None
    error: str


def _poisoned(failures: Sequence[IngestFailure], base: dict[str, Any], uploaded_at: datetime | None) -> UploadView:
    """The host gave up: nothing more happens until the file is uploaded again."""
    error = failures[-1].error
    line = (
        f"the ingest function failed {len(failures)} times and the host gave up (the blob is in the "
        f"webjobs-blobtrigger-poison queue): {error}; fix the cause, then upload the file again with --overwrite"
    )
    return UploadView(
        **base,
        stage=Stage.FAILED,
        detail=line,
        milestones=(Milestone(Stage.FAILED, line),),
        since=failures[-1].at,
        uploaded_at=uploaded_at,
        error=error,
    )


def is_stale(entry: LedgerEntry, upload_etag: str) -> bool:
    """A row that describes an earlier upload of the same bytes (another ETag) which this upload will retry
    (failed, canceled, deploy_failed) or redeploy (retired): until the ingest function takes it over, it
    says nothing about this upload."""
    return (
        bool(upload_etag)
        and entry.upload_etag.strip('"') != upload_etag.strip('"')  # listings and uploads quote ETags differently
        and (entry.status in RETRY_ON_REUPLOAD or entry.status is Status.RETIRED)
    )


def upload_view(
    entry: LedgerEntry | None,
    report: dict[str, Any] | None,
    *,
    name: str,
    dataset: str,
    sha256: str,
    report_path: str = "",
    report_time: datetime | None = None,
    uploaded_at: datetime | None = None,
    upload_etag: str = "",
    failures: Sequence[IngestFailure] = (),
    queue_place: int | None = None,
) -> UploadView:
    """The view of one upload. `report_path` is where the report is (or will be); `report_time` when
    report.json was last written; `upload_etag`, when known, the upload this view is about (see is_stale);
    `failures` the failed deliveries of this upload to the ingest function, oldest first (only an upload
    no ledger row accounts for reads them: a row is the truth, and the reconciler retries its claims)."""
    if entry is not None and is_stale(entry, upload_etag):
        entry, report = None, None
    where = report_path if report is not None else ""
    base: dict[str, Any] = {"name": name, "dataset": dataset, "sha256": sha256, "report": where}
    if entry is None:
        view = _without_row(report, base, report_time, uploaded_at)
        if failures and view.stage in (Stage.UPLOADED, Stage.VALIDATED) and not view.not_submitted:
            return _with_failures(view, failures, base, uploaded_at)
        return view
    view = _from_row(entry, report, base, uploaded_at or aware_time(entry.claimed_at), queue_place)
    return dataclasses.replace(view, choices=UploadChoices.from_ledger(entry.extra).line())


def _with_failures(
    view: UploadView, failures: Sequence[IngestFailure], base: dict[str, Any], uploaded_at: datetime | None
) -> UploadView:
    """An upload still waiting, but whose deliveries failed: failed once the host gave up, else retrying."""
    if len(failures) >= POISON_AFTER:
        return _poisoned(failures, base, uploaded_at)
    retrying = f"; the ingest function failed {len(failures)} of {POISON_AFTER} times (the host retries): "
    return dataclasses.replace(view, detail=view.detail + retrying + failures[-1].error, error=failures[-1].error)


def _without_row(
    report: dict[str, Any] | None, base: dict[str, Any], report_time: datetime | None, uploaded_at: datetime | None
) -> UploadView:
    if report is None:
        line = "waiting for the ingest function to validate it"
        return UploadView(
            **base, stage=Stage.UPLOADED, detail=line, milestones=(), since=uploaded_at, uploaded_at=uploaded_at
        )
    times = {"since": report_time, "uploaded_at": uploaded_at or report_time}
    if not report.get("valid"):
        line = _rejected_line(report, base["report"])
        first = (report.get("errors") or [{}])[0]
        error = f"line {first.get('line')}: {first.get('message')}" if first.get("message") else "rejected"
        return UploadView(
            **base,
            stage=Stage.REJECTED,
            detail=line,
            milestones=(Milestone(Stage.REJECTED, line),),
            error=error,
            **times,
        )
    submission = _section(report, "submission")
    line = _validated_line(report)
    not_submitted = submission.get("status") == "not submitted"
    detail = f"{line}; not submitted: {submission.get('reason', '')}".rstrip(": ") if not_submitted else line
    return UploadView(
        **base,
        stage=Stage.VALIDATED,
        detail=detail if not_submitted else f"{line}; submitting",
        milestones=(Milestone(Stage.VALIDATED, detail),),
        not_submitted=not_submitted,
        **times,
    )


def _from_row(
    entry: LedgerEntry,
    report: dict[str, Any] | None,
    base: dict[str, Any],
    uploaded_at: datetime | None,
    queue_place: int | None = None,
) -> UploadView:
    d, status = entry.deploy, entry.status
    submission, job_section = _section(report, "submission"), _section(report, "job")
    studio = str(job_section.get("studio_url") or submission.get("studio_url") or entry.extra.get(STUDIO_URL) or "")
    model = f"{d['model_name']}:{d['model_version']}" if d.get("model_name") and d.get("model_version") else ""
    endpoint, step = str(d.get("endpoint") or ""), str(d.get("step") or "")
    retired = d.get("retired") if isinstance(d.get("retired"), dict) else {}
    smoke = d.get("smoke") if isinstance(d.get("smoke"), dict) else {}
    reached = [Milestone(Stage.VALIDATED, _validated_line(report))]
    since = aware_time(entry.updated_at) or aware_time(entry.claimed_at)
    if status in (Status.CLAIMED, Status.RETRYABLE):
        since = aware_time(entry.claimed_at)
    # The ledger records the job a moment before the report gets its details (the studio link): until then,
    # it is still "submitting", so `--follow` prints the submitted line once, complete.
    reporting = status is Status.SUBMITTED and submission.get("status") == "submitting"
    has_job = bool(entry.job_name) and status not in (Status.CLAIMED, Status.RETRYABLE) and not reporting
    queued_at, why = entry.extra.get("queued_at"), entry.extra.get("queued_reason") or "waiting"
    if status is Status.QUEUED:
        place = f"place {queue_place} in the queue" if queue_place else "in the queue"
        reached.append(Milestone(Stage.QUEUED, f"{place} since {queued_at}: {why}; `chatft cancel` takes it out"))
        since = aware_time(queued_at) or since
    elif queued_at and status is not Status.CLAIMED:  # it waited before it was submitted (or canceled)
        reached.append(Milestone(Stage.QUEUED, f"waited in the queue from {queued_at}: {why}"))
    if has_job:
        reached.append(Milestone(Stage.SUBMITTED, f"job {entry.job_name}" + (f" {studio}" if studio else "")))
        reached.append(Milestone(Stage.TRAINING, f"job {entry.job_name} is running; waiting for it to end"))
    if model and status in (Status.REGISTERED, Status.DEPLOY_QUEUED, Status.HELD, *_AFTER_DEPLOY_START):
        reached.append(Milestone(Stage.REGISTERED, f"model {model}"))
        if status is Status.REGISTERED:
            since = aware_time(d.get("started_at")) or since
    waiting = d.get("queued") if isinstance(d.get("queued"), dict) else {}
    if status is Status.DEPLOY_QUEUED:
        reached.append(Milestone(Stage.DEPLOY_QUEUED, f"not deployed yet: {waiting.get('reason', 'waiting')}"))
        since = aware_time(waiting.get("at")) or since
    if status in _AFTER_DEPLOY_START and endpoint:
        reached.append(Milestone(Stage.DEPLOYING, f"endpoint {endpoint}, step {d.get('step', '?')}"))
        if status is Status.DEPLOYING:
            since = aware_time(d.get("updated_at")) or since
    figures, evaluation = _evaluation(d)
    if status is Status.LIVE or (status in (Status.RETIRING, Status.RETIRED) and d.get("live_at")):
        latency = f"smoke test {smoke['latency_ms']} ms" if smoke.get("latency_ms") is not None else ""
        measured = "; ".join(x for x in (latency, evaluation) if x)
        reached.append(
            Milestone(Stage.LIVE, f"{d.get('scoring_uri') or endpoint}" + (f" ({measured})" if measured else ""))
        )
        since = aware_time(d.get("live_at")) or since
    gated = d.get("gated") if isinstance(d.get("gated"), dict) else {}
    if status is Status.HELD:
        line = f"model {model} not deployed: {gated.get('reason', 'held by a gate')}; {SKIP_GATE_HINT}"
        reached.append(Milestone(Stage.HELD, line))
        since = aware_time(gated.get("at")) or since
    if status in (Status.RETIRING, Status.RETIRED):
        idle = "" if gated.get("reason") else "idle "
        reached.append(Milestone(Stage.RETIRING, f"deleting {idle}endpoint {endpoint}: {retired.get('reason', '')}"))
        since = aware_time(retired.get("at")) or since
    if status is Status.RETIRED:
        reached.append(Milestone(Stage.RETIRED, f"endpoint {endpoint} removed: {retired.get('reason', 'idle')}"))
        since = aware_time(retired.get("confirmed_gone_at")) or since
    error = ""
    failure = {Status.FAILED: Stage.FAILED, Status.CANCELED: Stage.CANCELED, Status.DEPLOY_FAILED: Stage.DEPLOY_FAILED}
    if status in failure:
        error = entry.error or str(d.get("error") or "") or "no detail recorded"
        where = f"; report {base['report']}" if base["report"] else ""
        reached.append(Milestone(failure[status], f"{error}{where}"))
    detail = reached[-1].detail
    if status is Status.CLAIMED or reporting:
        detail = f"{detail}; submitting (attempt {entry.attempt})"
    elif status is Status.RETRYABLE:
        error = entry.error
        detail = f"{detail}; submission retrying after: {entry.error}"
    elif status is Status.DEPLOYING or status is Status.REGISTERED:
        error = str(d.get("last_error") or "")
        if evaluation and step == "evaluate":
            detail = f"{detail}; evaluating: {evaluation}"
    if gated.get("reason") and status in (Status.HELD, Status.RETIRING, Status.RETIRED):
        error = f"{gated['reason']}; {SKIP_GATE_HINT}"
        if status is not Status.HELD:
            detail = f"{detail}; {SKIP_GATE_HINT}"
    return UploadView(
        **base,
        stage=reached[-1].stage,
        detail=detail,
        milestones=tuple(reached),
        status=status.value,
        since=since,
        uploaded_at=uploaded_at,
        job=entry.job_name,
        studio_url=studio,
        model=model,
        endpoint=endpoint,
        step=step if status in (Status.REGISTERED, Status.DEPLOYING) else "",
        scoring_uri=str(d.get("scoring_uri") or ""),
        error=error,
        token_f1=figures.get("token_f1"),
        latency_p95_ms=figures.get("latency_p95_ms"),
        evaluation=evaluation,
        queue_place=queue_place if status is Status.QUEUED else None,
        history=tuple(upload_history.lines(entry)),
    )


SKIP_GATE_HINT = "`chatft redeploy UPLOAD --skip-gate` deploys it anyway"


def _evaluation(d: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(figures, one line): the evaluation's figures once it finished, or how far it got."""
    raw = d.get("evaluation")
    figures = raw if isinstance(raw, dict) else {}
    if figures.get("token_f1") is not None:
        p95 = figures.get("latency_p95_ms")
        return figures, (
            f"token F1 {figures['token_f1']:.2f}, p95 {'-' if p95 is None else p95} ms "
            f"on {figures.get('samples')} held-out conversations"
        )
    if figures.get("scored") is not None:
        return {}, f"{figures['scored']} of {figures.get('samples')} held-out conversations scored"
    if figures.get("samples") == 0:
        return {}, "not evaluated: no held-out conversation to score"
    return {}, ""


def age_text(seconds: float | None) -> str:
    """'45s', '12m', '3h', '2d': an age a person reads at a glance."""
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


STALLED_AFTER_SECONDS = 600.0
"""An upload the ingest has not validated in this long is probably not reaching it: the blob event reaches the app
in seconds (Event Grid) or within a poll (the offline runner), and validation takes a minute or two even for large
files."""


def stalled_hint(view: UploadView, now: datetime) -> str:
    """What to check for an upload nothing has happened to in STALLED_AFTER_SECONDS ("" otherwise): a file that
    sits at `uploaded` is never silent about why it might."""
    if view.stage is not Stage.UPLOADED or view.since is None:
        return ""
    waited = (now - view.since).total_seconds()
    if waited < STALLED_AFTER_SECONDS:
        return ""
    return (
        f"no ingest result after {age_text(waited)}: the function app may not be receiving this upload's blob event "
        "(offline: is `chatft dev` running?); `chatft doctor` checks the wiring"
    )
