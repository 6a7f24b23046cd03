"""Drive the whole flow through the indexed functions: upload -> job -> events -> reconciler ticks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.functions.meta import Datum
from azure.functions.timer import TimerRequestConverter

import function_app
import shared.entry.app_wiring
from shared.domain.ledger import LedgerEntry, Status, UploadKey
from tests.chats import valid_file
from tests.events import COMPLETED, STATUS_CHANGED, cloud_event, decode, event_grid, run_data
from tests.hosting import find_function, invoke_blob_trigger
from tests.scoring_server import ScoringServer

SCORING_KEY = "k-123"

DATA = valid_file(60)
SHA = hashlib.sha256(DATA).hexdigest()
KEY = UploadKey("chats", SHA)


def submit(blob_service, storage_env, workspace) -> tuple[str, dict[str, str]]:
    """Upload the sample and let the ingest function submit it; return the job name and its tags."""
    blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "chats.jsonl").upload_blob(DATA, overwrite=True)
    invoke_blob_trigger(function_app.app, "ingest_upload", "chats.jsonl")
    [call] = workspace.jobs.created
    return call["job"].name, call["tags"]


def send(body: dict[str, Any]) -> None:
    find_function(function_app.app, "job_events").get_user_function()(decode(body))


def completed(job: str, tags: dict[str, str], schema: str = "eventgrid") -> dict[str, Any]:
    build = event_grid if schema == "eventgrid" else cloud_event
    return build(COMPLETED, run_data(job, tags))


def status(job: str, tags: dict[str, str], value: str, schema: str = "eventgrid", **kw: Any) -> dict[str, Any]:
    build = event_grid if schema == "eventgrid" else cloud_event
    return build(STATUS_CHANGED, run_data(job, tags, status=value, **kw))


def tick(past_due: bool = False) -> None:
    """One reconciler run, with the TimerRequest the host would pass."""
    timer = TimerRequestConverter.decode(
        Datum(json.dumps({"IsPastDue": past_due, "Schedule": {}}), "json"), trigger_metadata={}
    )
    find_function(function_app.app, "deploy_reconciler").get_user_function()(timer)


def row() -> LedgerEntry:
    return shared.entry.app_wiring.ledger().get(KEY)


def run_until(done, ticks: int = 20) -> None:
    for _ in range(ticks):
        if done():
            return
        tick()
    raise AssertionError(f"not done after {ticks} ticks: {row().status} at {row().deploy.get('step')}")


def report(blob_service, storage_env) -> dict[str, Any]:
    blob = blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"chats/{SHA[:16]}/report.json")
    return json.loads(blob.download_blob().readall())


def is_live() -> bool:
    return row().status is Status.LIVE


@contextmanager
def scoring(workspace) -> Iterator[ScoringServer]:
    """A scoring server that the test service's online endpoints answer with (scoring URI and key)."""
    with ScoringServer(key=SCORING_KEY, deployment="demo") as server:
        workspace.online_endpoints.scoring_uri, workspace.online_endpoints.key = server.url, SCORING_KEY
        yield server
