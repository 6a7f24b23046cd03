"""A local fine-tuning job, run in its own process: `python -m shared.local.train_job <job folder>`.

It does what the Azure ML pipeline does, small: reads the prepared splits through the
datastore, trains the retrieval model, evaluates it on the test split against a trivial
baseline, saves it as an MLflow model folder, and publishes run events for the parent
pipeline run and a child step, in Azure ML's own Event Grid schema.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from shared.local.events import RUN_COMPLETED, RUN_STATUS_CHANGED, post_events, run_event
from shared.local.retrieval import RetrievalModel
from shared.local.state import read_json, write_json

STEP = "chat_completion_finetune"


def _read_split(uri: str, containers: dict[str, str]) -> list[dict[str, Any]]:
    """azureml://datastores/<name>/paths/<path> -> the prepared blob, read from Blob Storage."""
    from shared.storage import blob_service

    rest = uri.removeprefix("azureml://datastores/")
    datastore, _, path = rest.partition("/paths/")
    data = blob_service().get_blob_client(containers[datastore], path).download_blob().readall()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def run(folder: Path) -> int:
    job = read_json(folder / "job.json")
    common = {"workspace_id": job["workspace_id"], "experiment": job["experiment"]}
    parent = {**common, "run_id": job["name"], "run_type": "azureml.PipelineRun", "tags": job["tags"]}
    child = {
        **common,
        "run_id": f"{job['name']}_{STEP}",
        "run_type": "azureml.StepRun",
        "tags": {"azureml.pipelinerunid": job["name"]},
    }
    webhook = job["webhook"]

    def status(value: str, **extra: Any) -> None:
        job.update(status=value, **extra)
        write_json(folder / "job.json", job)

    status("Running", started_at=time.time())
    post_events(
        webhook,
        [
            run_event(RUN_STATUS_CHANGED, status="Running", **parent),
            run_event(RUN_STATUS_CHANGED, status="Running", **child),
        ],
    )
    try:
        started = time.perf_counter()
        train = _read_split(job["data_uris"]["train"], job["datastores"])
        test = _read_split(job["data_uris"]["test"], job["datastores"]) if "test" in job["data_uris"] else []
        model = RetrievalModel.train(train)
        metrics = model.evaluate(test)
        metrics["train_seconds"] = round(time.perf_counter() - started, 3)
        metrics["train_conversations"] = len(train)
        model.save(
            folder / "outputs" / "trained_model",
            {"job": job["name"], "base_model": job["base_model"], "metrics": metrics},
        )
    except Exception as exc:  # the job fails; Azure ML would say Failed too
        (folder / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        status("Failed", error=f"{type(exc).__name__}: {exc}", ended_at=time.time())
        post_events(
            webhook,
            [
                run_event(RUN_STATUS_CHANGED, status="Failed", **child),
                run_event(RUN_STATUS_CHANGED, status="Failed", **parent),
            ],
        )
        return 1
    status("Completed", metrics=metrics, ended_at=time.time())
    post_events(
        webhook,
        [
            run_event(RUN_STATUS_CHANGED, status="Completed", **child),
            run_event(RUN_COMPLETED, **child),
            run_event(RUN_STATUS_CHANGED, status="Completed", **parent),
            run_event(RUN_COMPLETED, **parent),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
