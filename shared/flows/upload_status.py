"""What became of uploads: the ledger (the truth after validation), the reports (the only trace of a
rejected upload) and the upload container (uploads not validated yet), joined into one view each.

`chatft status` lists and finds uploads with it; `chatft upload --follow` polls one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from shared.azure.upload import UploadedBlob
from shared.domain.durations import duration_text
from shared.domain.job_queue import place
from shared.domain.ledger import Ledger, LedgerEntry, Status, UnreadableRow, UploadKey
from shared.domain.naming import dataset_name, dataset_prefix, is_upload
from shared.domain.spend import JOB_ENDED, JOB_STARTED
from shared.domain.training_progress import TrainingProgress
from shared.domain.upload_lookup import MIN_SHA_PREFIX, UploadNotFound, find_upload
from shared.domain.upload_stage import IngestFailure, Milestone, Stage, UploadView, is_stale, upload_view

RECENT = 20
"""How many uploads `chatft status` lists without --all: the newest by their last change."""
_HEX = re.compile(r"[0-9a-f]+")


class StatusStore(Protocol):
    """What the views need of storage (shared.azure.upload.UploadContainer)."""

    @property
    def upload_container(self) -> str: ...

    def list_uploads(self) -> list[UploadedBlob]: ...

    def read_report(self, prefix: str) -> tuple[dict[str, Any] | None, datetime | None]: ...

    def report_prefixes(self, dataset: str) -> list[tuple[str, datetime | None]]: ...

    def report_location(self, prefix: str) -> str: ...

    def failure_notes(
        self, dataset: str, since: datetime | None = None
    ) -> list[tuple[datetime | None, dict[str, Any]]]: ...


@dataclass(frozen=True)
class _Candidate:
    """An upload before its report is read: a ledger row, or a blob no row accounts for, or both."""

    entry: LedgerEntry | None
    blob: UploadedBlob | None

    @property
    def changed(self) -> datetime:
        moments = [self.blob.last_modified if self.blob else None]
        if self.entry is not None:
            moments += [self.entry.updated_at, self.entry.claimed_at]
        known = [_aware(m) for m in moments if m is not None]
        return max(known) if known else datetime.min.replace(tzinfo=timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def blob_name(source: str) -> str:
    """'<container>/<blob>' -> '<blob>'."""
    return source.split("/", 1)[1] if "/" in source else source


def ingest_failures(store: StatusStore, name: str, uploaded_at: datetime | None) -> list[IngestFailure]:
    """The failed deliveries of the upload `name` to the ingest function since it was uploaded, oldest first:
    the notes ingest leaves (one per failed delivery, naming its source)."""
    source = f"{store.upload_container}/{name}"
    failures = []
    for written, note in store.failure_notes(dataset_name(name), since=uploaded_at):
        if note.get("source") != source:
            continue
        error = str(note.get("failed") or "no detail recorded").strip()
        failures.append(IngestFailure(written, error.splitlines()[0] if error else "no detail recorded"))
    return failures


def follow_view(
    ledger: Ledger, store: StatusStore, *, name: str, sha256: str, etag: str = "", uploaded_at: datetime | None = None
) -> UploadView:
    """One upload known by its blob name and bytes (what `chatft upload` just wrote): two reads."""
    dataset = dataset_name(name)
    prefix = dataset_prefix(dataset, sha256)
    report, written = store.read_report(prefix)
    entry = ledger.get(UploadKey(dataset, sha256))
    view = upload_view(
        entry,
        report,
        name=name,
        dataset=dataset,
        sha256=sha256,
        report_path=store.report_location(prefix),
        report_time=written,
        uploaded_at=uploaded_at,
        upload_etag=etag,
        failures=_failures_unless_told(entry, etag, report, store, name, uploaded_at),
        queue_place=_queue_place(ledger, entry),
    )
    return with_times(view, entry if entry is not None and view.status else None, written)


def with_times(view: UploadView, entry: LedgerEntry | None, report_time: datetime | None) -> UploadView:
    """The view with each milestone's real time (from the ledger row's timestamps, else the report's), and a
    training that ended said as such: `--follow` on a finished upload prints its past, not "running" and "(0s)"."""
    d = entry.deploy if entry is not None else {}
    extra = entry.extra if entry is not None else {}

    def of(section: str, key: str) -> Any:
        value = d.get(section)
        return value.get(key) if isinstance(value, dict) else None

    raw: dict[Stage, Any] = {Stage.REJECTED: report_time, Stage.IGNORED: view.uploaded_at}
    if entry is None:
        raw[Stage.VALIDATED] = report_time
    else:
        failed = extra.get("canceled_at") or entry.updated_at
        raw |= {
            Stage.VALIDATED: entry.claimed_at,
            Stage.QUEUED: extra.get("queued_at"),
            Stage.SUBMITTED: extra.get(JOB_STARTED),
            Stage.TRAINING: extra.get(JOB_STARTED),
            Stage.REGISTERED: d.get("started_at") or extra.get(JOB_ENDED),
            Stage.DEPLOY_QUEUED: of("queued", "at"),
            Stage.DEPLOYING: d.get("started_at"),
            Stage.LIVE: d.get("live_at"),
            Stage.HELD: of("gated", "at"),
            Stage.RETIRING: of("retired", "at"),
            Stage.RETIRED: of("retired", "confirmed_gone_at") or of("retired", "at"),
            Stage.FAILED: failed,
            Stage.CANCELED: failed,
            Stage.DEPLOY_FAILED: entry.updated_at,
        }
    started, ended = _moment(extra.get(JOB_STARTED)), _moment(extra.get(JOB_ENDED))
    milestones = []
    for milestone in view.milestones:
        detail = milestone.detail
        if milestone.stage is Stage.TRAINING and ended is not None and view.job:
            ran = f" in {duration_text((ended - started).total_seconds())}" if started is not None else ""
            detail = f"job {view.job} ended{ran}"
        milestones.append(dataclasses.replace(milestone, detail=detail, at=_moment(raw.get(milestone.stage))))
    return dataclasses.replace(view, milestones=tuple(milestones))


def _moment(value: Any) -> datetime | None:
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return _aware(value) if isinstance(value, datetime) else None


def _queue_place(ledger: Ledger, entry: LedgerEntry | None) -> int | None:
    """A queued upload's place (1: next to start); one listing of the queue, only for a queued upload."""
    if entry is None or entry.status is not Status.QUEUED:
        return None
    return place(entry, ledger.with_status(Status.QUEUED))


def _failures_unless_told(
    entry: LedgerEntry | None,
    etag: str,
    report: dict[str, Any] | None,
    store: StatusStore,
    name: str,
    uploaded_at: datetime | None,
) -> list[IngestFailure]:
    """Failure notes matter only while nothing else tells the story: no ledger row, and no report that
    rejected the upload or says it is not submitted (one listing, skipped otherwise)."""
    if (entry is not None and not is_stale(entry, etag)) or (report is not None and not report.get("valid")):
        return []
    return ingest_failures(store, name, uploaded_at)


def _candidates(
    ledger: Ledger, store: StatusStore, unreadable: Iterable[UnreadableRow] = (), ignored: bool = False
) -> list[_Candidate]:
    """`ignored`: also the blobs the ingest function ignores (not .jsonl names), as candidates of their own."""
    entries = ledger.with_status(*Status)
    keys = {(e.key.dataset, e.key.sha256) for e in entries} | {(r.dataset, r.sha256) for r in unreadable}
    listed = store.list_uploads()
    blobs = [b for b in listed if is_upload(b.name)]
    by_etag = {b.etag: b for b in blobs if b.etag}
    found = [_Candidate(e, by_etag.get(e.upload_etag.strip('"'))) for e in entries]
    claimed = {id(c.blob) for c in found if c.blob is not None}
    for blob in blobs:
        if id(blob) in claimed or (blob.sha256 and (dataset_name(blob.name), blob.sha256) in keys):
            continue  # the ledger row tells this upload's story (a repeated upload of known bytes included)
        found.append(_Candidate(None, blob))
    if ignored:
        found += [_Candidate(None, b) for b in listed if not is_upload(b.name)]
    return sorted(found, key=lambda c: c.changed, reverse=True)


def ignored_view(name: str, uploaded_at: datetime | None) -> UploadView:
    """A blob the ingest function ignores (not a .jsonl name): nothing will happen to it."""
    line = f"not a .jsonl name: the ingest function ignores it; upload the file again with --name {jsonl_name(name)}"
    return UploadView(
        name=name,
        dataset="",
        sha256="",
        stage=Stage.IGNORED,
        detail=line,
        milestones=(Milestone(Stage.IGNORED, line),),
        since=uploaded_at,
        uploaded_at=uploaded_at,
    )


def jsonl_name(name: str) -> str:
    """'data.json' -> 'data.jsonl', 'notes' -> 'notes.jsonl': the name the ingest function takes."""
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.jsonl" if dot and stem and "/" not in ext else f"{name}.jsonl"


def list_uploads(ledger: Ledger, store: StatusStore, limit: int | None = RECENT) -> list[UploadView]:
    """The uploads, newest change first: `limit` of them (None: all, with the blobs the ingest function ignores);
    then every unreadable ledger row."""
    unreadable = ledger.unreadable()
    views = (_view(c, ledger, store) for c in _candidates(ledger, store, unreadable, ignored=limit is None))
    found: list[UploadView] = []
    for view in views:
        if view is not None:
            found.append(view)
        if limit is not None and len(found) >= limit:
            break
    return found + [_unreadable_view(row) for row in unreadable]


def _unreadable_view(row: UnreadableRow) -> UploadView:
    """A ledger row no flow can read (they all skip it): one line saying which row and what is wrong."""
    line = (
        f"ledger row PartitionKey {row.dataset!r}, RowKey {row.sha256!r} is unreadable ({row.problem}): every flow "
        "skips it; correct the column or delete the row"
    )
    stage = Stage.UNREADABLE
    return UploadView(
        name=f"ledger row {row.dataset}",
        dataset=row.dataset,
        sha256=row.sha256,
        stage=stage,
        detail=line,
        milestones=(Milestone(stage, line),),
        error=row.problem,
    )


def find(ledger: Ledger, store: StatusStore, query: str) -> UploadView:
    """The upload `query` names: a blob name, a job or endpoint name, or a SHA-256 prefix (find_upload's
    rules over the ledger), else a blob no ledger row accounts for (a rejected or not yet validated upload)."""
    candidates = _candidates(ledger, store, ignored=True)
    entries = [c.entry for c in candidates if c.entry is not None]
    try:
        entry = find_upload(entries, query)
    except UploadNotFound:
        for candidate in candidates:
            if candidate.entry is None and _names(candidate.blob, query):
                view = _view(candidate, ledger, store)
                if view is not None:
                    return view
        raise
    blob = next((c.blob for c in candidates if c.entry is entry), None)
    view = _view(_Candidate(entry, blob), ledger, store)
    assert view is not None  # a ledger row always has a view
    return view


def _names(blob: UploadedBlob | None, query: str) -> bool:
    if blob is None:
        return False
    q = query.strip().lower()
    sha_prefix = len(q) >= MIN_SHA_PREFIX and bool(_HEX.fullmatch(q)) and blob.sha256.startswith(q)
    return query.strip() == blob.name or sha_prefix


def _view(candidate: _Candidate, ledger: Ledger, store: StatusStore) -> UploadView | None:
    entry, blob = candidate.entry, candidate.blob
    uploaded_at = blob.last_modified if blob else None
    if entry is not None:
        prefix = dataset_prefix(entry.key.dataset, entry.key.sha256)
        report, written = store.read_report(prefix)
        return upload_view(
            entry,
            report,
            name=blob.name if blob else blob_name(entry.source),
            dataset=entry.key.dataset,
            sha256=entry.key.sha256,
            report_path=store.report_location(prefix),
            report_time=written,
            uploaded_at=uploaded_at,
            queue_place=_queue_place(ledger, entry),
        )
    assert blob is not None
    if not is_upload(blob.name):
        return ignored_view(blob.name, uploaded_at)
    dataset = dataset_name(blob.name)
    if blob.sha256:
        prefix = dataset_prefix(dataset, blob.sha256)
        report, written = store.read_report(prefix)
        if report is not None and written is not None and blob.last_modified and written < blob.last_modified:
            report, written = None, None  # an earlier upload's report: this one is not validated yet
        return upload_view(
            None,
            report,
            name=blob.name,
            dataset=dataset,
            sha256=blob.sha256,
            report_path=store.report_location(prefix),
            report_time=written,
            uploaded_at=uploaded_at,
            failures=_failures_unless_told(None, "", report, store, blob.name, uploaded_at),
        )
    return _view_by_report(blob, dataset, ledger, store)


def _view_by_report(blob: UploadedBlob, dataset: str, ledger: Ledger, store: StatusStore) -> UploadView | None:
    """A blob put there by other means (no sha256 metadata): its report is the newest one naming it as
    its source and written after it; none yet means it is waiting for validation. None: a ledger row
    already tells its story (a repeated upload of bytes the ledger knows)."""
    source = f"{store.upload_container}/{blob.name}"
    for prefix, written in store.report_prefixes(dataset):
        if blob.last_modified and written and written < blob.last_modified:
            break  # older than this blob: written for an earlier upload under this name
        report, written = store.read_report(prefix)
        if report is None or report.get("source") != source:
            continue
        sha = str(report.get("sha256") or "")
        if sha and ledger.get(UploadKey(dataset, sha)) is not None:
            return None
        return upload_view(
            None,
            report,
            name=blob.name,
            dataset=dataset,
            sha256=sha,
            report_path=store.report_location(prefix),
            report_time=written,
            uploaded_at=blob.last_modified,
            failures=_failures_unless_told(None, "", report, store, blob.name, blob.last_modified),
        )
    failures = ingest_failures(store, blob.name, blob.last_modified)
    return upload_view(
        None, None, name=blob.name, dataset=dataset, sha256="", uploaded_at=blob.last_modified, failures=failures
    )


def training_progress(workspace: object | None, job: str) -> str:
    """The running job's newest step and training loss (shared.domain.training_progress), "" when the backend
    has none yet or cannot be read: progress is a courtesy, never a reason for `chatft status` to fail."""
    import logging

    found = job_progress(workspace, job)
    if found.problem:
        logging.getLogger("chatft").debug("no training progress for %s: %s", job, found.problem)
    return found.progress.line if found.progress is not None else ""


@dataclass(frozen=True)
class ProgressRead:
    """One read of a job's tracking store: its newest training loss (None: none logged yet, or unreadable)."""

    progress: TrainingProgress | None = None
    problem: str = ""
    """One line when the tracking store could not be read (never when the job has simply logged nothing yet)."""


def job_progress(workspace: object | None, job: str) -> ProgressRead:
    """The job's newest step and training loss as its backend's tracking store has them. A job that has logged
    nothing yet (the local job's metrics.json not written, the MLflow run not there: 404) is no problem; any
    other failure is one line, never raised."""
    from shared.domain.training_progress import latest

    if workspace is None or not job:
        return ProgressRead()
    try:
        return ProgressRead(latest(workspace.training_metrics(job)))  # type: ignore[attr-defined]
    except Exception as exc:
        return ProgressRead(problem=tracking_failure(exc))


def tracking_failure(exc: Exception) -> str:
    """ "" for "nothing logged yet"; else one line saying what failed (a sign-in failure says the fix)."""
    from shared.azure.azureml.tracking import DENIED_HINT, TrackingError
    from shared.azure.identity import sign_in_failure

    if isinstance(exc, FileNotFoundError) or (isinstance(exc, TrackingError) and exc.status == 404):
        return ""
    if (signed_out := sign_in_failure(exc, "tracking")) is not None:
        return signed_out
    if isinstance(exc, TrackingError):  # the commands read as you (shared.entry.cli.commands.target), not the app
        return "tracking: " + str(exc).replace(DENIED_HINT, DENIED_HINT.replace("the app's identity needs", "you need"))
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"tracking: {type(exc).__name__}" + (f": {first}" if first else "")
