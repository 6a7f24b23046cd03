"""Ingest use case: stream an uploaded blob through the validator, write the split, submit, report.

The upload is only ever read. Outputs go to a different container, content-addressed by the
upload's SHA-256, so a repeated trigger rewrites identical bytes and never loops on itself. Before
submitting, the bytes are claimed by their SHA-256 (shared.domain.content_claim): the same bytes under
another name (`az storage blob upload`, the portal) are reported and logged as a copy of the first, not
trained again, even when both arrive at once.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import orjson

from shared.azure.storage import PreparedStore
from shared.domain.chatdata.prepare import SplitFiles
from shared.domain.chatdata.report import Report
from shared.domain.chatdata.report_merge import merge_report
from shared.domain.chatdata.split import SPLITS
from shared.domain.chatdata.streams import buffered
from shared.domain.chatdata.validator import validate_stream
from shared.domain.content_claim import ClaimResult, ContentClaims
from shared.domain.finetune.choices import UploadChoices
from shared.domain.naming import correlation_id, dataset_name, is_upload, prepared_prefix
from shared.domain.shell import chatft
from shared.flows.lifecycle_events import Publisher, publish_rejected, rejected_fields
from shared.flows.reports import write_report
from shared.flows.submission import PreparedUpload
from shared.logs import log_step
from shared.settings import Settings

JSONL = "application/x-ndjson"


class UploadBlob(Protocol):
    """What ingest needs of an uploaded blob (azure.storage.blob.BlobClient satisfies it)."""

    container_name: str
    blob_name: str

    def download_blob(self) -> _Download: ...


class _Download(Protocol):
    def chunks(self) -> Iterable[bytes]: ...

    @property
    def properties(self) -> object: ...


@dataclass
class IngestOutcome:
    status: str
    """accepted, rejected, duplicate (its bytes are another blob's: not submitted), or ignored (not .jsonl)."""
    source: str
    sha256: str | None = None
    report: str | None = None
    prepared: dict[str, str] = field(default_factory=dict)
    report_data: Report | None = None


Submit = Callable[[PreparedUpload], dict[str, Any]]
"""Submits a prepared upload for fine-tuning; returns a summary for the report (see shared.flows.submission)."""


def ingest_blob(
    blob: UploadBlob,
    settings: Settings,
    store: PreparedStore,
    submit: Submit | None = None,
    events: Publisher | None = None,
    claims: ContentClaims | None = None,
) -> IngestOutcome:
    source = f"{blob.container_name}/{blob.blob_name}"
    if not is_upload(blob.blob_name):  # a warning: the host's output and App Insights show it (nothing else will)
        log_step("ingest.ignored", source=source, reason="not .jsonl", level=logging.WARNING)
        return IngestOutcome("ignored", source)
    try:
        return _ingest(blob, source, settings, store, submit, events, claims)
    except Exception as exc:
        _leave_failure_report(store, blob.blob_name, source, exc)
        raise


def _ingest(
    blob: UploadBlob,
    source: str,
    settings: Settings,
    store: PreparedStore,
    submit: Submit | None,
    events: Publisher | None = None,
    claims: ContentClaims | None = None,
) -> IngestOutcome:
    download = blob.download_blob()
    etag = str(getattr(download.properties, "etag", "") or "")
    dataset = dataset_name(blob.blob_name)
    log_step("ingest.received", source=source, etag=etag, dataset=dataset)
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="chatft-") as tmp, SplitFiles(Path(tmp)) as sink:
        stream = buffered(download.chunks(), tap=digest.update)
        report = validate_stream(stream, settings.validation_options(), source=source, sink=sink)
        report.sha256 = sha = digest.hexdigest()
        cid = correlation_id(sha)
        prefix = prepared_prefix(blob.blob_name, sha)
        log_step(
            "ingest.validated",
            cid=cid,
            source=source,
            etag=etag,
            valid=report.valid,
            conversations=report.conversations,
            errors=report.errors.total,
            warnings=report.warnings.total,
            bytes=report.stats.bytes_read,
        )
        prepared: dict[str, str] = {}
        holder = None
        if report.valid and submit is not None and claims is not None:  # the bytes go to training: once
            holder = _holder(claims, sha, blob.blob_name, etag)
        if report.valid and holder is None:
            for name, path in sink.commit().items():
                prepared[name] = store.put_file(f"{prefix}/{name}.jsonl", path, JSONL)
    report.extra["prepared"] = prepared
    if not report.valid:
        report_path = _write_report(store, prefix, report)
        log_step("ingest.rejected", cid=cid, source=source, report=report_path, level=logging.WARNING)
        publish_rejected(events, **rejected_fields(dataset, sha, source, etag, cid, report_path, report))
        return IngestOutcome("rejected", source, sha, report_path, prepared, report)
    if holder is not None:
        return _duplicate(store, prefix, report, holder, blob.container_name, source)
    log_step("ingest.prepared", cid=cid, source=source, prepared=prepared)
    upload = PreparedUpload(
        source=source,
        blob_name=blob.blob_name,
        dataset=dataset,
        sha256=sha,
        cid=cid,
        etag=etag,
        # An empty split (its fraction is 0) is written for a uniform layout but not passed to the job.
        prepared_paths={
            name: f"{prefix}/{name}.jsonl" for name, rows in zip(SPLITS, report.split_counts, strict=True) if rows
        },
        choices=UploadChoices.from_metadata(getattr(download.properties, "metadata", None)),
    )
    if submit is None:
        report.extra["submission"] = {"status": "not submitted", "reason": "ML_BACKEND=none: validate and prepare only"}
    else:
        # Written first, so even a worker that dies while submitting leaves a report behind.
        report.extra["submission"] = {"status": "submitting"}
        _write_report(store, prefix, report)
        try:
            report.extra["submission"] = submit(upload)
        except Exception as exc:  # transient: the report says so, and the host retries
            report.extra["submission"] = {"status": "retrying", "error": f"{type(exc).__name__}: {exc}"}
            _write_report(store, prefix, report)
            raise
    report_path = _write_report(store, prefix, report)
    log_step(
        "ingest.reported",
        cid=cid,
        source=source,
        report=report_path,
        submission=report.extra["submission"].get("status"),
    )
    return IngestOutcome("accepted", source, sha, report_path, prepared, report)


def _holder(claims: ContentClaims, sha: str, blob_name: str, etag: str) -> ClaimResult | None:
    """Claim the bytes for this blob; the claim of the blob that holds them instead, if another does."""
    found = claims.claim(sha, blob_name, by="ingest", now=datetime.now(timezone.utc), blob_etag=etag)
    return None if found.acquired else found


def _duplicate(
    store: PreparedStore, prefix: str, report: Report, holder: ClaimResult, container: str, source: str
) -> IngestOutcome:
    """Another blob holds these bytes: say so in this blob's report and the log; the upload stays as it is."""
    first = holder.claim.blob
    report.extra["submission"] = {
        "status": "not submitted",
        "duplicate_of": f"{container}/{first}",
        "reason": f"the same bytes are {holder.reason} (sha256 {report.sha256[:12]}), not trained twice: "
        f"{chatft('status', first)} follows that upload; to retry it, "
        f"{chatft('upload', 'FILE', '--name', first, '--overwrite')}",
    }
    report_path = _write_report(store, prefix, report)
    log_step(
        "ingest.duplicate",
        cid=correlation_id(report.sha256 or ""),
        source=source,
        duplicate_of=f"{container}/{first}",
        reason=holder.reason,
        report=report_path,
        level=logging.WARNING,
    )
    return IngestOutcome("duplicate", source, report.sha256, report_path, {}, report)


def _write_report(store: PreparedStore, prefix: str, report: Report) -> str:
    """report.json for tools and report.md for people, next to the prepared data, merged with what
    other workers and later steps already wrote there (see shared.domain.chatdata.report_merge)."""
    new = report.as_dict()
    written = write_report(store, prefix, lambda existing: merge_report(new, existing) if existing else new)
    return written or store.location(f"{prefix}/report.md")


def _leave_failure_report(store: PreparedStore, blob_name: str, source: str, exc: Exception) -> None:
    """A failure mid-stream (e.g. storage outage) still leaves a note a person can find.

    The content hash is unknown here, so the note is keyed by time; each retry leaves its own.
    """
    failed_at = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    note = {
        "source": source,
        "valid": None,
        "failed_at": failed_at,
        "failed": f"{type(exc).__name__}: {exc}",
        "retry": "the host retries the trigger; after 5 failures the blob is listed in webjobs-blobtrigger-poison",
    }
    path = f"{dataset_name(blob_name)}/_failed/{failed_at}.json"
    try:
        store.put_bytes(path, orjson.dumps(note, default=str, option=orjson.OPT_INDENT_2), "application/json")
    except Exception:
        logging.getLogger("chatft").exception("could not write failure report for %s", source)
    log_step("ingest.failed", source=source, error=note["failed"], note=path, level=logging.ERROR)
