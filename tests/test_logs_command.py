"""`chatft logs UPLOAD [--follow]` through the real command line, on Azurite: offline, the local backend's job folder
(log.txt, which LocalWorkspace._start fills with the training process's output; error.txt, its traceback when it
fails); on Azure, the REAL azure-ai-ml over the in-memory Azure ML service's run history (tests/aml_rest.py).

What `az ml job stream` prints, and so what this prints: each log file under "Streaming <file>" and a line of "="
ten longer than the name, then only the lines not printed before (`_incremental_print` in azure-ai-ml's
azure/ai/ml/operations/_job_ops_helper.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

import shared.entry.app_wiring
from shared.domain.ledger import Status, UploadKey
from shared.domain.workspace import FinetuneRequest
from shared.entry.cli.app import app
from shared.local.backend import LocalWorkspace
from shared.local.state import read_json, write_json
from tests.chats import valid_file
from tests.deploy_flow import submit
from tests.test_endpoint_action_commands import SETTINGS_KEYS, Pinned

runner = CliRunner()
SHA = "ab" * 32
JOB = "chatft-chats-abababababab-a1"


def banner(name: str) -> str:
    return f"\nStreaming {name}\n{'=' * (len(name) + 10)}\n\n"


@pytest.fixture
def offline(storage_env, blob_service, tmp_path, monkeypatch):
    """(settings file, the jobs folder): the local backend's settings for `--settings` (never a live `chatft dev`)."""
    values = {
        **storage_env,
        "ML_BACKEND": "local",
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
        "LEDGER_TABLE": f"lg{uuid.uuid4().hex[:12]}",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    shared.entry.app_wiring.reset()
    blob_service.create_container(storage_env["UPLOAD_CONTAINER"])
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": values}))
    yield path, tmp_path / "state" / "jobs"
    shared.entry.app_wiring.reset()


def chatft(path: Path, *args: str):
    return runner.invoke(app, ["logs", *args, "--settings", str(path)])


def ledger_row(status: Status, job: str = JOB) -> None:
    """The ledger row of `chats.jsonl` as the ingest and the job events leave it."""
    ledger, now = shared.entry.app_wiring.ledger(), datetime.now(timezone.utc)
    key = UploadKey("chats", SHA)
    ledger.claim(
        key,
        upload_etag="",
        source=f"{os.environ['UPLOAD_CONTAINER']}/chats.jsonl",
        cid="c1",
        now=now,
        stale_after=timedelta(1),
    )
    entry = ledger.get(key)
    entry.status, entry.job_name = status, job
    assert ledger.save(entry)


def running_job(jobs: Path, log: str, job: str = JOB) -> Path:
    """A job folder as LocalWorkspace.submit_finetune leaves it while its process runs (this process stands in for
    it: job_record reads a job whose process is gone as Failed)."""
    folder = jobs / job
    write_json(folder / "job.json", {"name": job, "status": "Running", "started_at": time.time()})
    write_json(folder / "process.json", {"pid": os.getpid()})
    (folder / "log.txt").write_text(log, encoding="utf-8")
    return folder


def test_logs_prints_the_local_training_log_as_az_ml_job_stream_does(offline) -> None:
    path, jobs = offline
    ledger_row(Status.SUBMITTED)
    running_job(jobs, "loading splits\nepoch 1/3 train_loss 0.71\nepoch 2/3 train")
    result = chatft(path, "chats.jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout == banner("log.txt") + "loading splits\nepoch 1/3 train_loss 0.71\nepoch 2/3 train\n"
    assert f"job {JOB} (Running)" in result.stderr and "--follow" in result.stderr
    assert "using settings" in result.stderr.splitlines()[0]


def test_follow_prints_each_new_line_once_until_the_job_ends(offline) -> None:
    path, jobs = offline
    ledger_row(Status.SUBMITTED)
    folder = running_job(jobs, "loading splits\nepoch 1/3 train_loss 0.71\nepoch 2/3 tr")

    def train() -> None:  # the process goes on writing, then ends
        time.sleep(0.6)
        with (folder / "log.txt").open("a", encoding="utf-8") as log:
            log.write("ain_loss 0.52\n")
            log.flush()
            time.sleep(0.4)
            log.write("epoch 3/3 train_loss 0.40\nsaved the model\n")
        time.sleep(0.3)
        write_json(folder / "job.json", {**read_json(folder / "job.json"), "status": "Completed"})

    writer = threading.Thread(target=train)
    writer.start()
    started = time.monotonic()
    result = chatft(path, JOB, "--follow", "--interval", "0.1")
    writer.join()
    assert result.exit_code == 0, result.output
    assert result.stdout == banner("log.txt") + (
        "loading splits\nepoch 1/3 train_loss 0.71\nepoch 2/3 train_loss 0.52\nepoch 3/3 train_loss 0.40\n"
        "saved the model\n"
    )
    assert result.stderr.strip().splitlines()[-1] == f"job {JOB} Completed"
    assert time.monotonic() - started < 10


@pytest.mark.slow
def test_a_local_job_that_fails_shows_its_traceback_and_exits_1(offline) -> None:
    path, _ = offline
    ledger_row(Status.SUBMITTED)
    settings = shared.entry.app_wiring.settings()
    workspace = LocalWorkspace(settings)
    try:  # a real training process, on a split no datastore holds: it fails at once
        uri = "azureml://datastores/no_such_datastore/paths/chats/train.jsonl"
        workspace.submit_finetune(FinetuneRequest(JOB, {"train": uri}, {}, "c1"))
        result = chatft(path, "chats.jsonl", "--follow", "--interval", "0.2")
    finally:
        workspace.shutdown()
    assert result.exit_code == 1, result.output
    assert banner("error.txt") in result.stdout and "KeyError: 'no_such_datastore'" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == f"job {JOB} Failed"


@pytest.mark.slow
def test_a_local_job_logs_each_epoch_and_its_test_score(offline, blob_service) -> None:
    """The job's own log says what it does (one timestamped line per epoch, with the losses the tracking store
    keeps), so `chatft logs` offline shows the training move, as an Azure ML step's std_log.txt does."""
    path, _ = offline
    ledger_row(Status.SUBMITTED)
    settings = shared.entry.app_wiring.settings()
    container = blob_service.get_container_client(settings.prepared_container)
    if not container.exists():
        container.create_container()
    uris = {}
    for split, (count, start) in {"train": (40, 0), "validation": (6, 40), "test": (6, 46)}.items():
        container.upload_blob(f"chats/{SHA[:16]}/{split}.jsonl", valid_file(count, start), overwrite=True)
        uris[split] = f"azureml://datastores/{settings.aml_datastore}/paths/chats/{SHA[:16]}/{split}.jsonl"
    workspace = LocalWorkspace(settings)
    try:
        workspace.submit_finetune(FinetuneRequest(JOB, uris, {}, "c1"))
        result = chatft(path, "chats.jsonl", "--follow", "--interval", "0.2")
    finally:
        workspace.shutdown()
    assert result.exit_code == 0, result.output
    lines = result.stdout.split(banner("log.txt"), 1)[1].splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert re.fullmatch(
        stamp + rf"job {JOB}: trainer retrieval, 40 train, 6 validation, 6 test conversations", lines[0]
    )
    epochs = [line for line in lines if re.fullmatch(stamp + r"epoch \d/3: train_loss [\d.]+, eval_loss .*", line)]
    assert [line.split()[3] for line in epochs] == ["1/3:", "2/3:", "3/3:"]
    assert re.fullmatch(stamp + r"test: token F1 [\d.]+ \(baseline [\d.]+\) on 6", lines[-1])


def test_ctrl_c_while_following_is_one_line_and_exit_130(offline, monkeypatch) -> None:
    path, jobs = offline
    ledger_row(Status.SUBMITTED)
    running_job(jobs, "epoch 1/3\n")
    read = threading.Event()
    job_log = LocalWorkspace.job_log

    def watched(self, name):
        read.set()
        return job_log(self, name)

    monkeypatch.setattr(LocalWorkspace, "job_log", watched)

    def interrupt() -> None:  # Ctrl-C once the command follows the log
        if read.wait(20):
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    result = chatft(path, "chats.jsonl", "--follow", "--interval", "0.1")
    assert result.exit_code == 130, result.output
    assert result.stdout == banner("log.txt") + "epoch 1/3\n"
    assert result.stderr.strip().splitlines()[-1] == "stopped following; the job goes on: `chatft status chats.jsonl`"
    assert "Traceback" not in result.output


def test_an_upload_without_a_job_says_its_stage(offline) -> None:
    path, _ = offline
    ledger_row(Status.QUEUED, job="")
    result = chatft(path, "chats.jsonl")
    assert result.exit_code == 1
    assert result.stdout == "" and "no job yet for chats.jsonl: it is queued" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_upload_is_one_line_and_exit_2(offline) -> None:
    path, _ = offline
    result = chatft(path, "nothing.jsonl")
    assert result.exit_code == 2
    assert "no upload matches 'nothing.jsonl'" in result.stderr and "Traceback" not in result.output


def test_an_unreadable_log_is_one_line(offline) -> None:
    path, jobs = offline
    ledger_row(Status.SUBMITTED)
    folder = running_job(jobs, "")
    (folder / "log.txt").unlink()
    (folder / "log.txt").mkdir()  # not a file: reading it fails as an unreadable one does
    result = chatft(path, "chats.jsonl")
    assert result.exit_code == 1
    assert f"cannot read the log of job {JOB}: {folder / 'log.txt'}:" in result.stderr
    assert "Traceback" not in result.output


# --- Azure: the REAL azure-ai-ml over tests/aml_rest.py's run history ---


@pytest.fixture
def azure(aml, tmp_path, monkeypatch):
    """(service, settings file): the `aml` fixture's workspace kept across the command's settings reset, and a
    local.settings.json with this test's settings for `--settings`."""
    service, _ = aml
    adapter = shared.entry.app_wiring.workspace()
    monkeypatch.setattr(shared.entry.app_wiring, "workspace", Pinned(lambda: adapter))
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {k: os.environ[k] for k in SETTINGS_KEYS if k in os.environ}}))
    return service, path


EXECUTION_LOG = "logs/azureml/executionlogs.txt"
STD_LOG = "user_logs/std_log.txt"


def pipeline_with_a_step(service, job: str) -> str:
    """The run tree of chat_completion_pipeline as the run history lists it: the job, its pipeline component, and
    the fine-tuning step under it (with its system logs beside the user log); returns the step's run id."""
    runs, step = service.runs, f"{job}_finetune"
    runs.write(job, EXECUTION_LOG, f"[2026-12-05 10:00:01Z] Submitting 1 runs, first five are: x:{job}_pipeline\n")
    runs.write(job, "logs/azureml/stderrlogs.txt", "")
    runs.add_step(job, f"{job}_pipeline", "chat_completion_pipeline")
    runs.add_step(f"{job}_pipeline", f"{job}_import", "model_import", status="Completed")
    runs.write(f"{job}_import", STD_LOG, "model imported\n")
    runs.add_step(f"{job}_pipeline", step, "finetune")
    runs.write(step, "system_logs/lifecycler/lifecycler.log", "lifecycler: started\n")
    runs.write(step, "user_logs/std_log_process_01.txt", "rank 1 says nothing useful\n")
    runs.write(step, STD_LOG, "{'loss': 2.31, 'epoch': 0.1}\n")
    return step


def test_azure_logs_print_the_pipeline_and_step_logs_through_the_sdk(azure, blob_service, storage_env) -> None:
    """What `az ml job stream` reads for a pipeline job (operations/_job_ops_helper.py, stream_logs_until_completion:
    the run's details, its logFiles filtered by _get_sorted_filtered_logs, each downloaded whole), and each step's
    primary user log under it (RunOperations.get_run_children, operations/_run_operations.py)."""
    service, path = azure
    job, _ = submit(blob_service, storage_env, service)
    pipeline_with_a_step(service, job)
    result = chatft(path, "chats.jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        banner(EXECUTION_LOG)
        + f"[2026-12-05 10:00:01Z] Submitting 1 runs, first five are: x:{job}_pipeline\n"
        + banner(f"model_import/{STD_LOG}")
        + "model imported\n"
        + banner(f"finetune/{STD_LOG}")
        + "{'loss': 2.31, 'epoch': 0.1}\n"
    )
    assert f"job {job} (Running): https://ml.azure.com/runs/{job}" in result.stderr
    assert service.calls_to("GET", r"^/discovery$") and service.calls_to("GET", rf"/runs/{job}/details$")
    assert service.calls_to("GET", rf"/runs/{job}_pipeline/children$")


def test_azure_follow_prints_new_step_lines_once_until_the_job_completes(
    azure,
    blob_service,
    storage_env,
) -> None:
    service, path = azure
    job, _ = submit(blob_service, storage_env, service)
    step = pipeline_with_a_step(service, job)
    runs = service.runs
    reads = 0
    answer = runs.answer

    def training(url):  # each read of the step's details: the step logs on, then the job ends
        nonlocal reads
        if url.path.endswith(f"/runs/{step}/details"):
            reads += 1
            if reads == 2:
                runs.write(step, STD_LOG, "{'loss': 1.87, 'epoch': 0.5}\n")
            if reads == 3:
                runs.write(step, STD_LOG, "{'loss': 1.52, 'epoch': 1.0}\ntraining done\n")
                runs.steps[step]["status"] = "Completed"
                service.jobs.get(job)._status = "Completed"
        return answer(url)

    runs.answer = training
    result = chatft(path, job, "--follow", "--interval", "0.1")
    assert result.exit_code == 0, result.output
    step_log = result.stdout.split(banner(f"finetune/{STD_LOG}"))[1]
    assert step_log == (
        "{'loss': 2.31, 'epoch': 0.1}\n{'loss': 1.87, 'epoch': 0.5}\n{'loss': 1.52, 'epoch': 1.0}\ntraining done\n"
    )
    assert result.stdout.count(banner(EXECUTION_LOG)) == 1
    assert result.stderr.strip().splitlines()[-1] == f"job {job} Completed"


def test_an_azure_job_without_logs_yet_says_so_in_one_line(azure, blob_service, storage_env) -> None:
    service, path = azure
    job, _ = submit(blob_service, storage_env, service)
    result = chatft(path, "chats.jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"job {job} has no log yet (Running)" in result.stderr and "Traceback" not in result.output


def test_signed_out_of_azure_is_one_line(azure, blob_service, storage_env) -> None:
    """The credential fails as DefaultAzureCredential does with no login: ClientAuthenticationError
    (CredentialUnavailableError, azure/identity/_exceptions.py) from get_token, raised through the SDK's pipeline."""
    service, path = azure
    submit(blob_service, storage_env, service)
    service.credential.unavailable = 100
    result = chatft(path, "chats.jsonl")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr  # the target, then the failure
    line = lines[1]
    assert "Azure ML:" in line and "az login" in line
    assert "Traceback" not in result.output
