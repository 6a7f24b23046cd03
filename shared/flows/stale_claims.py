"""Uploads whose submission was claimed but never finished, picked up again by the reconciler tick.

A worker can die between claiming an upload and recording the job, and the trigger may never
be delivered again (the host saw the retry succeed, or gave up and poisoned the blob after an
outage). Such a row would block the upload forever; the reconciler resubmits it once its claim
is older than SUBMIT_CLAIM_TIMEOUT_SECONDS (the deterministic job name prevents a second job).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import orjson

from shared.domain.finetune.choices import UploadChoices
from shared.domain.ledger import LedgerEntry, Status
from shared.domain.naming import dataset_prefix
from shared.flows.reports import update_report, write_report
from shared.flows.submission import PreparedUpload, ledger_summary, submit_prepared
from shared.logs import log_step


def prepared_upload(entry: LedgerEntry, store: Any) -> PreparedUpload:
    """Rebuild what ingest handed to the submission, from the ledger row and the prepared blobs."""
    prefix = dataset_prefix(entry.key.dataset, entry.key.sha256)
    paths = {split: f"{prefix}/{split}.jsonl" for split in ("train", "validation", "test")}
    present = {split: path for split, path in paths.items() if store.read_first_line(path)}
    return PreparedUpload(
        source=entry.source,
        blob_name=entry.source.split("/", 1)[1] if "/" in entry.source else entry.source,
        dataset=entry.key.dataset,
        sha256=entry.key.sha256,
        cid=entry.cid,
        etag=entry.upload_etag,
        prepared_paths=present,
        choices=UploadChoices.from_ledger(entry.extra),
    )


def resubmit_stale_claims(ctx: Any, now: datetime) -> list[tuple[str, str]]:
    """Resubmit claimed/retryable rows older than the claim timeout; returns (cid, outcome) pairs."""
    stale_after = timedelta(seconds=ctx.settings.claim_timeout_seconds)
    results = []
    for entry in ctx.ledger.with_status(Status.CLAIMED, Status.RETRYABLE):
        if now - (entry.updated_at or entry.claimed_at) < stale_after:
            continue
        try:
            upload = prepared_upload(entry, ctx.store)
            summary = submit_prepared(
                upload, settings=ctx.settings, ledger=ctx.ledger, workspace=ctx.workspace, now=ctx.now
            )
        except Exception as exc:
            log_step(
                "submit.resubmit_failed", cid=entry.cid, error=f"{type(exc).__name__}: {exc}", level=logging.WARNING
            )
            results.append((entry.cid, f"error: {type(exc).__name__}"))
            continue
        update_report(ctx.store, dataset_prefix(entry.key.dataset, entry.key.sha256), "submission", summary)
        log_step("submit.resubmitted", cid=entry.cid, status=summary.get("status"), job=summary.get("job"))
        results.append((entry.cid, str(summary.get("status"))))
    return results


def sync_submission_reports(ctx: Any) -> list[str]:
    """Level-triggered repair: the report of every upload whose job is training must say so.

    The worker that submitted writes the report last, but it may die between the ledger and the
    report; this makes the report converge to the ledger on the next tick. Returns the cids fixed.
    """
    fixed = []
    for entry in ctx.ledger.with_status(Status.SUBMITTED):
        prefix = dataset_prefix(entry.key.dataset, entry.key.sha256)
        raw = ctx.store.read_bytes(f"{prefix}/report.json")
        if raw is None:
            continue
        section = (orjson.loads(raw).get("submission") or {}) if raw.strip() else {}
        if section.get("status") == "submitted" and section.get("job") == entry.job_name:
            continue
        summary = ledger_summary(entry)
        write_report(ctx.store, prefix, lambda doc, summary=summary: doc and {**doc, "submission": summary})
        log_step("report.synced", cid=entry.cid, job=entry.job_name, was=section.get("status"))
        fixed.append(entry.cid)
    return fixed
