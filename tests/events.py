"""Azure ML run events in the documented Event Grid and CloudEvents 1.0 shapes, decoded by
azure.functions into the real objects the host hands the function."""

from __future__ import annotations

import json
import uuid
from typing import Any

from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum

WORKSPACE = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-chatft/providers/Microsoft.MachineLearningServices/workspaces/ws-chatft"
COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"


def run_data(
    run_id: str, tags: dict[str, str], *, run_type: str = "azureml.PipelineRun", status: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "experimentId": "6d6f7a2e-1c42-4a70-9a1d-3e4b5f6a7b8c",
        "experimentName": "chatft-finetune",
        "runId": run_id,
        "runType": run_type,
        "runTags": tags,
        "runProperties": {"azureml.runsource": "azureml.PipelineRun"},
    }
    if status is not None:
        data["runStatus"] = status
    return data


def event_grid(event_type: str, data: dict[str, Any], topic: str = WORKSPACE) -> dict[str, Any]:
    return {
        "topic": topic,
        "subject": f"experiments/{data['experimentId']}/runs/{data['runId']}",
        "eventType": event_type,
        "eventTime": "2026-11-22T08:00:00.9584103Z",
        "id": str(uuid.uuid4()),
        "data": data,
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def cloud_event(event_type: str, data: dict[str, Any], source: str = WORKSPACE) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": source,
        "id": str(uuid.uuid4()),
        "time": "2026-11-22T08:00:00.9584103Z",
        "subject": f"experiments/{data['experimentId']}/runs/{data['runId']}",
        "datacontenttype": "application/json",
        "data": data,
    }


def decode(body: dict[str, Any]) -> Any:
    """What the Functions host gives the function: func.EventGridEvent or func.CloudEvent."""
    return EventGridEventInConverter.decode(Datum(json.dumps(body), "json"), trigger_metadata={})
