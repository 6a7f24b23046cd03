"""A local training job outlives the `chatft dev` that ran it, as an Azure ML job outlives the Functions host:
kill -9 of dev during training queues the job, the next dev resumes it under the same name and the upload goes
on to its model; a job that really fails says why in the upload's status, not only that it failed."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.dev_process import ROOT, Dev, chatft, folder_env, jobs, stage, until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's"),
]
QUICK = {"JOB_POLL_QUIET_MINUTES": "0.02", "DEPLOY_RECONCILE_SCHEDULE": "*/1 * * * * *"}
"""The reconciler every second, and it asks the backend about any job quiet for 1.2 s."""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "big.jsonl").write_bytes((ROOT / "samples" / "chat_sample.jsonl").read_bytes())  # ~2 s of training
    return tmp_path


def training(folder: Path) -> dict:
    return until(
        "the job training", lambda: next((j for j in jobs(folder) if j["status"] == "Running"), None), every=0.01
    )


def test_kill_9_of_dev_during_training_queues_the_job_and_the_next_dev_resumes_it(folder: Path) -> None:
    env = folder_env(**QUICK)
    dev = Dev(folder, env)
    try:
        assert chatft(folder, env, "upload", "big.jsonl").returncode == 0
        training(folder)
        dev.kill9()
        [job] = until("the job stopped", lambda: [j for j in jobs(folder) if j["status"] != "Running"])
        assert job["status"] == "Queued" and job["interrupted"] == "stopped before it finished: the runner shut down"
        dev = Dev(folder, env)
        view = until(
            "the upload past training",
            lambda: (s := stage(folder, env, "big.jsonl")) and s["stage"] not in ("submitted", "training") and s,
            timeout=60,
        )
        assert view["stage"] in ("registered", "deploying", "live") and view["error"] is None, view
        assert view["job"] == job["name"]  # the same job, not a second one
        [resumed] = jobs(folder)
        assert resumed["status"] == "Completed" and resumed["resumed"] == 1
        assert any(f"resumed job {job['name']}" in line for line in dev.lines)
    finally:
        dev.stop()


def test_a_job_process_killed_on_its_own_fails_the_upload_with_the_cause(folder: Path) -> None:
    env = folder_env(**QUICK)
    dev = Dev(folder, env)
    try:
        assert chatft(folder, env, "upload", "big.jsonl").returncode == 0
        job = training(folder)
        pid = json.loads((folder / ".chatft" / "jobs" / job["name"] / "process.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)  # not its runner: the job itself dies, as on an out-of-memory kill
        view = until("the upload failed", lambda: (s := stage(folder, env, "big.jsonl")) and s["error"] and s)
        assert view["stage"] == "failed"
        assert view["error"] == "the fine-tuning job failed: the job process ended without finishing (killed?)"
    finally:
        dev.stop()
