"""A local fine-tuning job, run in its own process: `python -m shared.local.train_job <job folder>`.

It does what the Azure ML pipeline does, small: reads the prepared splits through the
datastore, trains with the job's trainer (job.json `trainer`, from LOCAL_TRAINER: the retrieval stand-in, or LoRA
on LOCAL_BASE_MODEL in shared.local.lora), evaluates it on the test split against a trivial baseline, saves it as
an MLflow model folder, and publishes run events for the parent pipeline run and a child step, in Azure ML's own Event
Grid schema.

Whatever happens, job.json ends Completed or Failed (with the error: a bad job.json, a missing
split), or, when its runner stops or dies (SIGTERM), Queued with `interrupted` saying so: that is
not the job's failure, and the next runner resumes it (shared.local.backend). Events that cannot be
delivered are recorded in job.json (`events_undelivered`) and never fail the job: on Azure ML, the
job's outcome does not depend on Event Grid either.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from shared.domain.evaluation import held_out_pair
from shared.domain.finetune.params import TRAINING_DEFAULTS
from shared.local.events import RUN_COMPLETED, RUN_STATUS_CHANGED, post_events, run_event
from shared.local.job_log import epoch_line, say
from shared.local.procs import watch_parent
from shared.local.retrieval import RetrievalModel
from shared.local.split_rows import SplitRows
from shared.local.state import read_json, write_json
from shared.local.trainers import LORA, RETRIEVAL, trainer_of

STEP = "chat_completion_finetune"
TERMINAL = ("Completed", "Failed")
INTERRUPTED = "stopped before it finished: the runner shut down"
QUEUED = "Queued"
CANCELED = "Canceled"
"""An Azure ML job status: waiting to run. Here: waiting for the next runner to resume it."""


class Stopped(Exception):
    """SIGTERM (the runner is stopping, or it is gone): stop at once, queued for the next runner."""


def _stop(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough: we are already finishing
    raise Stopped(INTERRUPTED)


def _split_blob(uri: str, containers: dict[str, str]) -> Any:
    """azureml://datastores/<name>/paths/<path> -> the prepared blob's client, in Blob Storage."""
    from shared.azure.storage import blob_service

    rest = uri.removeprefix("azureml://datastores/")
    datastore, _, path = rest.partition("/paths/")
    return blob_service().get_blob_client(containers[datastore], path)


def _download_split(uri: str, containers: dict[str, str], file: Path) -> SplitRows:
    """The prepared blob streamed to `file` (as Azure ML mounts a job's data on its compute), read a row at a time."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("wb") as out:
        _split_blob(uri, containers).download_blob().readinto(out)
    return SplitRows(file)


def _read_split(uri: str, containers: dict[str, str]) -> list[dict[str, Any]]:
    """The prepared blob's rows, in memory (the retrieval stand-in indexes them all anyway)."""
    data = _split_blob(uri, containers).download_blob().readall()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


class Job:
    """job.json, kept up to date: the job's status and what happened to its events."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "job.json"
        self.record: dict[str, Any] = {"name": folder.name}
        self.stopped = False

    def load(self) -> None:
        try:
            record = read_json(self.path)
        except ValueError as exc:
            raise ValueError(f"job.json is not JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise ValueError(f"job.json is {'missing' if record is None else 'not an object'}")
        self.record = record
        missing = [
            k for k in ("name", "workspace_id", "experiment", "tags", "data_uris", "datastores") if k not in record
        ]
        if missing:
            raise ValueError(f"job.json lacks {', '.join(missing)}")

    def status(self, value: str, **extra: Any) -> None:
        self.record.update(status=value, **extra)
        write_json(self.path, self.record)

    def runs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The parent pipeline run and its child step, as the events describe them."""
        job = self.record
        common = {"workspace_id": job["workspace_id"], "experiment": job["experiment"]}
        parent = {**common, "run_id": job["name"], "run_type": "azureml.PipelineRun", "tags": job["tags"]}
        child = {
            **common,
            "run_id": f"{job['name']}_{STEP}",
            "run_type": "azureml.StepRun",
            "tags": {"azureml.pipelinerunid": job["name"]},
        }
        return parent, child

    def deliver(self, events: list[dict[str, Any]]) -> None:
        """POST to the webhook; if that fails (or we are stopping), record the events and why, and go on."""
        webhook = self.record.get("webhook")
        try:
            if not webhook:
                raise ConnectionError("the job has no event webhook")
            if self.stopped:
                raise ConnectionError("not sent: the job was stopped")
            post_events(webhook, events)
        except Exception as exc:  # Stopped included: the events are kept either way
            error = f"{type(exc).__name__}: {exc}"
            undelivered = self.record.setdefault("events_undelivered", [])
            undelivered.extend({"event": event, "error": error} for event in events)
            write_json(self.path, self.record)
            if isinstance(exc, Stopped):
                self.stopped = True

    def interrupt(self) -> int:
        """The runner stopped: not the job's failure. Queued again (no Failed event), for the next runner."""
        try:
            record = read_json(self.path)  # all of it, even when stopped while loading it
        except ValueError:
            record = None
        if not isinstance(record, dict):
            return self.fail(Stopped(INTERRUPTED))
        self.record = record
        if record.get("cancel_requested"):  # `chatft cancel` or JOB_MAX_HOURS, not the runner: Azure ML's Canceled
            self.status(CANCELED, ended_at=time.time())
            parent, child = self.runs()
            self.stopped = False
            self.deliver(
                [
                    run_event(RUN_STATUS_CHANGED, status=CANCELED, **child),
                    run_event(RUN_STATUS_CHANGED, status=CANCELED, **parent),
                ]
            )
            return 1
        self.status(QUEUED, interrupted=INTERRUPTED, interrupted_at=time.time())
        return 1

    def fail(self, exc: BaseException) -> int:
        self.stopped = self.stopped or isinstance(exc, Stopped)
        (self.folder / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        self.status("Failed", error=f"{type(exc).__name__}: {exc}", ended_at=time.time())
        if "workspace_id" in self.record:
            try:
                parent, child = self.runs()
            except Exception:  # a record too broken to describe its runs: nothing to publish
                return 1
            self.deliver(
                [
                    run_event(RUN_STATUS_CHANGED, status="Failed", **child),
                    run_event(RUN_STATUS_CHANGED, status="Failed", **parent),
                ]
            )
        return 1


def epochs(record: dict[str, Any]) -> int:
    """The job's num_train_epochs, as sent (the backend keeps its parameters in job.json); chatft's default for a
    record written before they were kept."""
    value = (record.get("params") or {}).get("num_train_epochs", TRAINING_DEFAULTS["num_train_epochs"])
    return max(1, int(value))


EVAL_LIMIT = 200
"""Conversations evaluated per epoch, at most (the curves stay cheap on big uploads)."""
TEST_LIMIT = 1000
"""Test conversations scored, at most, first ones first: the most EVAL_SAMPLES takes from the same split, so the
job's test token F1 is the figure its endpoint's evaluation measures, and a big upload's test split is not
scanned whole (8,500 lookups took minutes on a 40 MB upload)."""


def _log_epochs(job: Job, train_rows: list[dict[str, Any]], validation: list[dict[str, Any]]) -> None:
    """Real curves, logged as MLflow metrics (key, value, timestamp, step) to metrics.json, one "epoch" per the
    job's num_train_epochs (E): epoch e trains the retrieval model on the first e/E of the train split, then
    measures token F1 on that subset (train) and on the validation split (eval). Loss is 1 - token F1. The curves
    show what more data buys a retrieval model; no foundation model is fine-tuned."""
    history: list[dict[str, Any]] = []
    total = epochs(job.record)
    for epoch in range(1, total + 1):
        subset = train_rows[: max(1, len(train_rows) * epoch // total)]
        try:
            model = RetrievalModel.train(subset)
        except ValueError:  # no (user, assistant) turn yet in this subset
            continue
        seen = model.evaluate(subset[:EVAL_LIMIT])["token_f1"]
        held_out = model.evaluate(validation[:EVAL_LIMIT])["token_f1"] if validation else None
        now = int(time.time() * 1000)
        values = {"train_loss": 1 - seen}
        if held_out is not None:
            values |= {"eval_loss": 1 - held_out, "eval_token_f1": held_out}
        history += [{"key": k, "value": round(v, 4), "timestamp": now, "step": epoch} for k, v in values.items()]
        write_json(job.folder / "metrics.json", {"step": "epoch", "metrics": history})
        say(epoch_line(epoch, total, values, rows=f"{len(subset)} conversations indexed"))


def train(job: Job) -> dict[str, Any]:
    """Read the splits and train with the job's own trainer (job.json `trainer`: a resumed job keeps it)."""
    record = job.record
    started = time.perf_counter()
    trainer = trainer_of(record)
    if trainer not in (RETRIEVAL, LORA):
        raise ValueError(f"job.json trainer {trainer!r} is not one of {RETRIEVAL}, {LORA}")
    uris, stores = record["data_uris"], record["datastores"]
    if trainer == LORA:  # rows read from disk as batches need them, whatever the upload's size
        data = job.folder / "data"
        splits: dict[str, Any] = {
            name: _download_split(uri, stores, data / f"{name}.jsonl") for name, uri in uris.items()
        }
    else:
        splits = {name: _read_split(uri, stores) for name, uri in uris.items()}
    train_rows, test = splits["train"], splits.get("test") or []
    validation = splits.get("validation", test)
    say(
        f"job {record['name']}: trainer {trainer}, {len(train_rows)} train, {len(validation)} validation, "
        f"{len(test)} test conversations"
    )
    if trainer == LORA:  # torch, transformers and peft load only here, in the job's own process
        from shared.local.lora.train import train_lora

        try:
            return train_lora(record, train_rows, validation, test, job.folder)
        finally:
            for rows in splits.values():
                rows.close()  # every split is a SplitRows here
            shutil.rmtree(data, ignore_errors=True)  # a copy of the prepared blobs: the datastore keeps them
    _log_epochs(job, train_rows, validation)
    model = RetrievalModel.train(train_rows)
    metrics = model.evaluate([c for c in test if held_out_pair(c) is not None][:TEST_LIMIT])
    metrics["train_seconds"] = round(time.perf_counter() - started, 3)
    metrics["train_conversations"] = len(train_rows)
    say(f"test: token F1 {metrics['token_f1']} (baseline {metrics['baseline_token_f1']}) on {metrics['examples']}")
    model.save(
        job.folder / "outputs" / "trained_model",
        {"job": record["name"], "base_model": record.get("base_model"), "metrics": metrics},
    )
    return metrics


def run(folder: Path) -> int:
    job = Job(folder)
    try:
        job.load()
        parent, child = job.runs()
        job.status("Running", started_at=time.time())
        job.deliver(
            [
                run_event(RUN_STATUS_CHANGED, status="Running", **parent),
                run_event(RUN_STATUS_CHANGED, status="Running", **child),
            ]
        )
        if job.stopped:
            raise Stopped(INTERRUPTED)
        metrics = train(job)
    except Stopped:
        return job.interrupt()
    except Exception as exc:  # the job fails; Azure ML would say Failed too
        if job.stopped:  # stopped while delivering an event, then failed on the way out
            return job.interrupt()
        return job.fail(exc)
    try:
        job.status("Completed", metrics=metrics, ended_at=time.time())
    except Stopped:  # the model is saved: finish the record anyway
        job.stopped = True
        job.status("Completed", metrics=metrics, ended_at=time.time())
    job.deliver(
        [
            run_event(RUN_STATUS_CHANGED, status="Completed", **child),
            run_event(RUN_COMPLETED, **child),
            run_event(RUN_STATUS_CHANGED, status="Completed", **parent),
            run_event(RUN_COMPLETED, **parent),
        ]
    )
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m shared.local.train_job <job folder>", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    watch_parent()  # the runner is gone: SIGTERM ourselves, and wait Queued for the next one
    return run(Path(argv[0]))


def exit_now(code: int) -> None:
    """End the process without the interpreter's teardown: job.json already says how the job ended, and
    garbage-collecting a LoRA job's torch objects at exit takes seconds, longer than a cancel's SIGTERM grace
    (the backend would SIGKILL a job that has finished)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
