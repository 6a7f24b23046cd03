"""Azure ML run events, exactly as the workspace publishes them, POSTed to a Functions webhook."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from typing import Any

RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"


def run_event(
    event_type: str,
    *,
    workspace_id: str,
    experiment: str,
    run_id: str,
    run_type: str,
    tags: dict[str, str],
    status: str | None = None,
    properties: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One event in the Event Grid schema, as Azure ML sends it."""
    experiment_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{workspace_id}/experiments/{experiment}"))
    data: dict[str, Any] = {
        "experimentId": experiment_id,
        "experimentName": experiment,
        "runId": run_id,
        "runType": run_type,
        "runTags": tags,
        "runProperties": properties or {"azureml.runsource": run_type},
    }
    if status is not None:
        data["runStatus"] = status
    return {
        "topic": workspace_id,
        "subject": f"experiments/{experiment_id}/runs/{run_id}",
        "eventType": event_type,
        "eventTime": datetime.now(timezone.utc).isoformat(),
        "id": str(uuid.uuid4()),
        "data": data,
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def post_events(url: str, events: list[dict[str, Any]], *, attempts: int = 5, timeout: float = 30) -> int:
    """POST like Event Grid: a JSON array, header `aeg-event-type: Notification`; retry what fails."""
    body = json.dumps(events).encode()
    last: Exception | None = None
    for attempt in range(attempts):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "aeg-event-type": "Notification"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status
        except (urllib.error.URLError, OSError) as exc:  # Event Grid retries with backoff too
            last = exc
            time.sleep(min(0.2 * 2**attempt, 3))
    raise ConnectionError(f"could not deliver {len(events)} event(s) to {url}: {last}")
