"""The stage view is pure: every ledger status maps to a stage and the milestones before it, in order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.domain.ledger import LedgerEntry, Status, UploadKey
from shared.domain.upload_stage import JSON_KEYS, Stage, age_text, as_json, upload_view

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
REPORT = {"valid": True, "conversations": 3, "splits": {"train": 2, "validation": 0, "test": 1}}
DEPLOY = {
    "model_name": "m",
    "model_version": "1",
    "endpoint": "ep",
    "step": "wait_endpoint",
    "live_at": NOW.isoformat(),
}


def entry(status: Status, **kw) -> LedgerEntry:
    row = LedgerEntry(
        UploadKey("chats", "ab" * 32), status, 1, "c", NOW - timedelta(hours=1), '"e1"', "up/chats.jsonl", "c"
    )
    row.job_name = "" if status in (Status.CLAIMED,) else "job-a1"
    row.deploy = dict(DEPLOY) if status not in (Status.CLAIMED, Status.SUBMITTED, Status.FAILED) else {}
    for key, value in kw.items():
        setattr(row, key, value)
    return row


def view(row, report=REPORT, **kw):
    return upload_view(row, report, name="chats.jsonl", dataset="chats", sha256="ab" * 32, report_path="p/r.md", **kw)


@pytest.mark.parametrize(
    ("status", "stages"),
    [
        (Status.CLAIMED, ["validated"]),
        (Status.SUBMITTED, ["validated", "submitted", "training"]),
        (Status.REGISTERED, ["validated", "submitted", "training", "registered"]),
        (Status.DEPLOYING, ["validated", "submitted", "training", "registered", "deploying"]),
        (Status.LIVE, ["validated", "submitted", "training", "registered", "deploying", "live"]),
        (
            Status.RETIRED,
            ["validated", "submitted", "training", "registered", "deploying", "live", "retiring", "retired"],
        ),
        (Status.FAILED, ["validated", "submitted", "training", "failed"]),
        (Status.DEPLOY_FAILED, ["validated", "submitted", "training", "registered", "deploying", "deploy_failed"]),
    ],
)
def test_each_status_has_its_milestones_in_order(status, stages) -> None:
    v = view(entry(status, error="boom" if status in (Status.FAILED, Status.DEPLOY_FAILED) else ""))
    assert [m.stage.value for m in v.milestones] == stages and v.stage.value == stages[-1]
    assert v.final == (stages[-1] in ("live", "retired", "failed", "deploy_failed"))


def test_no_row_means_uploaded_rejected_or_validated() -> None:
    assert view(None, None).stage is Stage.UPLOADED and not view(None, None).final
    rejected = view(None, {"valid": False, "error_totals": {"E1": 2}, "errors": [{"line": 7, "message": "bad"}]})
    assert rejected.stage is Stage.REJECTED and rejected.failed and "report p/r.md" in rejected.detail
    assert rejected.error == "line 7: bad"
    none = view(None, {**REPORT, "submission": {"status": "not submitted", "reason": "ML_BACKEND=none"}})
    assert none.stage is Stage.VALIDATED and none.final and not none.failed


def test_a_row_of_an_earlier_upload_it_will_retry_says_nothing_about_this_one() -> None:
    failed = entry(Status.FAILED, error="old")
    assert view(failed, upload_etag='"e2"').stage is Stage.UPLOADED
    assert view(failed, upload_etag="e1").stage is Stage.FAILED  # the same upload, however the ETag is quoted
    assert view(entry(Status.LIVE), upload_etag='"e2"').stage is Stage.LIVE  # a repeat of live bytes: still live


def test_json_keys_and_ages() -> None:
    doc = as_json(view(entry(Status.LIVE), uploaded_at=NOW - timedelta(minutes=5)), NOW + timedelta(seconds=30))
    assert tuple(doc) == JSON_KEYS and doc["stage_age_seconds"] == 30 and doc["upload_age_seconds"] == 330
    assert [age_text(s) for s in (None, 5, 125, 7300, 90000)] == ["-", "5s", "2m", "2h", "1d"]


def test_an_upload_nothing_happens_to_says_what_to_check() -> None:
    """A file that sits at `uploaded` (the blob event never reaches the app, or `chatft dev` is not running) was
    silent: "waiting for the ingest function" for hours. After STALLED_AFTER_SECONDS it says what to check."""
    from shared.domain.upload_stage import STALLED_AFTER_SECONDS, stalled_hint

    at = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    waiting = view(None, None, uploaded_at=at)
    assert stalled_hint(waiting, at + timedelta(seconds=STALLED_AFTER_SECONDS - 1)) == ""
    hint = stalled_hint(waiting, at + timedelta(minutes=12))
    assert hint.startswith("no ingest result after 12m: ") and "`chatft doctor`" in hint and "`chatft dev`" in hint
    validated = view(None, REPORT, uploaded_at=at, report_time=at)
    assert validated.stage is not Stage.UPLOADED and stalled_hint(validated, at + timedelta(hours=3)) == ""
