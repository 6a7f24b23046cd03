"""Issue 20 items 1, 3, 4, 5 offline: the guards on the local backend, whose jobs are real processes.

- `chatft dev` with MAX_ACTIVE_JOBS=2 and five uploads at once: never more than two training processes at a
  time, the jobs started in the order ingest first saw the uploads (the waiting ones in their queue order), all
  five live; then MONTHLY_BUDGET_USD below the month's estimate
  holds a sixth upload `queued` (reason "budget") and the runner's topic gets one `chatft.budget.warning`.
- `chatft cancel` on each stage, and JOB_MAX_HOURS (the reconciler's clock injected): the training process is
  stopped, its job recorded Canceled (never resumed by the next runner), the row `canceled` with who and why.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import function_app
import shared.entry.app_wiring
from shared.domain.ledger import Status, UploadKey
from shared.flows.cancel import cancel
from shared.local import procs
from shared.local.state import read_json
from tests.dev_session_setup import local_settings, running, wait
from tests.hosting import invoke_blob_trigger
from tests.test_guards import action_ctx

ROOT = Path(__file__).resolve().parent.parent
LINES = (ROOT / "samples" / "chat_sample.jsonl").read_bytes().splitlines(keepends=True)
FILES = [b"".join(LINES[200 * i : 200 * i + 200]) for i in range(6)]
SHAS = [hashlib.sha256(f).hexdigest() for f in FILES]


def row(i: int):
    return shared.entry.app_wiring.ledger().get(UploadKey(f"g{i}", SHAS[i]))


def overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


@pytest.mark.slow
def test_two_jobs_at_a_time_all_live_in_arrival_order_and_the_budget_holds_a_sixth(
    azurite, tmp_path, monkeypatch
) -> None:
    from shared.azure.storage import blob_service, ensure_container

    overrides = local_settings(tmp_path, "gd", MAX_ACTIVE_JOBS="2", MAX_LIVE_ENDPOINTS="6", EVAL_SAMPLES="5")
    with running(azurite, monkeypatch, overrides) as (dev, lines):
        settings = shared.entry.app_wiring.settings()
        uploads = blob_service().get_container_client(settings.upload_container)
        ensure_container(uploads)
        for i in range(5):  # all at once: some must wait
            uploads.upload_blob(f"g{i}.jsonl", FILES[i])
        wait("all five live", lambda: all((r := row(i)) and r.status is Status.LIVE for i in range(5)), timeout=90)
        rows = [row(i) for i in range(5)]
        records = [dev.workspace.job_record(r.job_name) for r in rows]
        assert overlap([(r["created_at"], r["ended_at"]) for r in records]) <= 2
        waited = [r for r in rows if r.extra.get("queued_at")]
        assert waited, "with five at once and two slots, some upload waited"
        for r in waited:  # each announced its wait (the runner prints the lifecycle events it receives)
            assert any(f"chatft.job.queued {r.key.dataset}/{r.key.sha256[:12]}" in line for line in lines), r.key
        arrival = [r.extra.get("queued_at") or r.claimed_at.isoformat() for r in rows]  # when ingest first saw it
        started = [rec["created_at"] for rec in records]
        assert sorted(range(5), key=arrival.__getitem__) == sorted(range(5), key=started.__getitem__)
        # the month's estimate (five endpoints live for seconds) is above a budget of one cent: a sixth waits
        monkeypatch.setenv("MONTHLY_BUDGET_USD", "0.0001")
        shared.entry.app_wiring.reset()
        uploads.upload_blob("g5.jsonl", FILES[5])
        entry = wait("the sixth queued", lambda: (r := row(5)) and r.status is Status.QUEUED and r)
        assert entry.extra["queued_reason"].startswith("budget: the month's estimated spend")
        wait("the budget warning", lambda: any("chatft.budget.warning" in line for line in lines), timeout=10)
        time.sleep(2.5)  # more ticks: still one warning, still queued
        assert sum("chatft.budget.warning" in line for line in lines) == 1
        assert row(5).status is Status.QUEUED and all(row(i).status is Status.LIVE for i in range(5))


@pytest.fixture
def offline(storage_env, blob_service, tmp_path, monkeypatch):
    """The local backend behind the indexed functions, with no runner: ingest submits a real training process."""
    monkeypatch.setenv("ML_BACKEND", "local")
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LEDGER_TABLE", f"gl{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("LOCAL_EVENT_WEBHOOK", "http://127.0.0.1:9/runtime/webhooks/EventGrid?functionName=job_events")
    shared.entry.app_wiring.reset()
    blob_service.create_container(storage_env["UPLOAD_CONTAINER"])
    yield blob_service
    shared.entry.app_wiring.workspace().shutdown()
    shared.entry.app_wiring.reset()


def upload(blob_service, storage_env, i: int) -> None:
    name = f"g{i}.jsonl"
    blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], name).upload_blob(FILES[i], overwrite=True)
    invoke_blob_trigger(function_app.app, "ingest_upload", name)


def process_of(job: str) -> int:
    folder = Path(shared.entry.app_wiring.settings().local_state_dir) / "jobs" / job
    return int(read_json(folder / "process.json")["pid"])


def test_chatft_cancel_on_each_stage_offline(offline, storage_env, monkeypatch) -> None:
    monkeypatch.setenv("MAX_ACTIVE_JOBS", "1")
    shared.entry.app_wiring.reset()
    upload(offline, storage_env, 0)
    upload(offline, storage_env, 1)
    assert row(0).status is Status.SUBMITTED and row(1).status is Status.QUEUED
    queued = cancel(action_ctx(), "g1.jsonl", by="chatft cancel (ana@laptop)")
    assert queued.ok and "taken out of the queue" in queued.message and row(1).status is Status.CANCELED
    job, pid = row(0).job_name, process_of(row(0).job_name)
    running = cancel(action_ctx(), "g0.jsonl", by="chatft cancel (ana@laptop)")
    assert running.ok and f"job {job} canceled" in running.message
    assert not procs.is_running(pid)
    workspace = shared.entry.app_wiring.workspace()
    assert workspace.job_record(job)["status"] == "Canceled" and workspace.job_info(job).status == "Canceled"
    assert workspace.resume_interrupted_jobs(wait=0) == []  # the next runner does not start it again
    entry = row(0)
    assert entry.status is Status.CANCELED and entry.extra["canceled_by"] == "chatft cancel (ana@laptop)"
    twice = cancel(action_ctx(), "g0.jsonl")
    assert twice.ok and not twice.changed and "already canceled" in twice.message
    assert workspace.begin_cancel_job(job) == "Canceled"  # a job that ended is its final status


def test_a_local_job_past_job_max_hours_is_stopped(offline, storage_env, monkeypatch) -> None:
    monkeypatch.setenv("JOB_MAX_HOURS", "1")
    shared.entry.app_wiring.reset()
    upload(offline, storage_env, 0)
    job, pid = row(0).job_name, process_of(row(0).job_name)
    ctx = shared.entry.app_wiring.deploy_context()
    monkeypatch.setattr(ctx, "now", lambda: datetime.now(timezone.utc) + timedelta(hours=1, minutes=1))
    from shared.flows.job_poll import poll_quiet_jobs

    assert poll_quiet_jobs(ctx) == [(job, "canceled: past JOB_MAX_HOURS")]
    assert not procs.is_running(pid)
    assert shared.entry.app_wiring.workspace().job_record(job)["status"] == "Canceled"
    entry = row(0)
    assert entry.status is Status.CANCELED and "JOB_MAX_HOURS is 1" in entry.error
    assert os.path.exists(Path(shared.entry.app_wiring.settings().local_state_dir) / "jobs" / job / "job.json")
