"""A local training job always ends Completed or Failed in job.json, whatever happens to its event
webhook or its input, or Queued for the next runner when its runner stops; undeliverable events are
recorded, never fatal."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import shared.local.train_job as train_job
from shared.local.state import read_json
from tests.chats import conversation

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def job(storage_env, blob_service, tmp_path, monkeypatch):
    """A job folder whose train/test splits are in Azurite and whose webhook is down."""
    container = storage_env["PREPARED_CONTAINER"]
    blob_service.create_container(container)
    for split, rows in (("train", range(30)), ("test", range(30, 35))):
        data = "".join(json.dumps(conversation(i)) + "\n" for i in rows).encode()
        blob_service.get_blob_client(container, f"p/{split}.jsonl").upload_blob(data)
    folder = tmp_path / "jobs" / "job-1"
    folder.mkdir(parents=True)
    record = {
        "name": "job-1",
        "status": "NotStarted",
        "experiment": "chatft-finetune",
        "workspace_id": "/subscriptions/x/workspaces/w",
        "tags": {"chatft_cid": "c"},
        "data_uris": {split: f"azureml://datastores/ds/paths/p/{split}.jsonl" for split in ("train", "test")},
        "datastores": {"ds": container},
        "webhook": f"http://127.0.0.1:{closed_port()}/runtime/webhooks/EventGrid?functionName=job_events",
        "base_model": "Phi-3-mini-4k-instruct",
    }
    (folder / "job.json").write_text(json.dumps(record))
    monkeypatch.setattr(train_job, "post_events", functools.partial(train_job.post_events, attempts=1))
    return folder


def test_a_down_webhook_does_not_kill_the_job(job: Path) -> None:
    assert train_job.run(job) == 0
    record = read_json(job / "job.json")
    assert record["status"] == "Completed" and record["metrics"]["train_conversations"] == 30
    assert (job / "outputs" / "trained_model" / "MLmodel").exists()
    lost = record["events_undelivered"]
    assert len(lost) == 6  # Running x2, then Completed and RunCompleted for the step and the pipeline
    assert all("could not deliver" in entry["error"] for entry in lost)
    assert lost[-1]["event"]["eventType"].endswith("RunCompleted")


def test_a_missing_split_fails_the_job_with_the_error(job: Path) -> None:
    record = read_json(job / "job.json")
    record["data_uris"]["train"] = "azureml://datastores/ds/paths/p/missing.jsonl"
    (job / "job.json").write_text(json.dumps(record))
    assert train_job.run(job) == 1
    record = read_json(job / "job.json")
    assert record["status"] == "Failed" and "BlobNotFound" in record["error"]
    assert [e["event"]["data"]["runStatus"] for e in record["events_undelivered"]][-2:] == ["Failed", "Failed"]


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b'{"name": "job-1"}', None], ids=["not-json", "not-object", "lacks", "missing"]
)
def test_a_bad_job_json_ends_failed_not_running(tmp_path: Path, content: bytes | None) -> None:
    folder = tmp_path / "job-2"
    folder.mkdir()
    if content is not None:
        (folder / "job.json").write_bytes(content)
    assert train_job.run(folder) == 1
    record = read_json(folder / "job.json")
    assert record["status"] == "Failed" and record["error"].startswith("ValueError: job.json")


def test_sigterm_queues_the_job_for_the_next_runner(job: Path) -> None:
    """SIGTERM is the runner stopping (or gone): not the job's failure. No Failed event; Queued, with why."""
    with socket.socket() as stall:  # accepts the event POST, never answers: the job hangs in delivery
        stall.bind(("127.0.0.1", 0))
        stall.listen()
        record = read_json(job / "job.json")
        record["webhook"] = f"http://127.0.0.1:{stall.getsockname()[1]}/x"
        (job / "job.json").write_text(json.dumps(record))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen([sys.executable, "-m", "shared.local.train_job", str(job)], env=env, cwd=ROOT)
        deadline = time.monotonic() + 20
        while (read_json(job / "job.json") or {}).get("status") != "Running":
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 1
    record = read_json(job / "job.json")
    assert record["status"] == "Queued" and record["interrupted"] == train_job.INTERRUPTED and "error" not in record
    statuses = [e["event"]["data"]["runStatus"] for e in record["events_undelivered"]]
    assert statuses and "Failed" not in statuses
