"""A stand-in for the Functions host that drives the real Python worker library in-process.

`python -m tests.worker.host` (from the repository root, on the deployed Python) does what the host
and the 3.13 proxy worker do: hand the library a `StreamingMessage` and the protobuf module
(`request.properties["protos"]`), `worker_init_request` → `functions_metadata_request` →
`function_load_request` → one `invocation_request` per function, with the `TypedData` the host
sends. The handlers below `shared.entry.app_wiring` are stubbed: what is under test is that the worker
indexes the app and hands each function what our code expects. It prints one JSON document.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SETTINGS = {  # what infra/app/processor.bicep sets for the bindings' %EXPRESSIONS%
    "UPLOAD_CONTAINER": "chat-uploads",
    "CHATFT_STORAGE__blobServiceUri": "https://stchatft.blob.core.windows.net",
    "JANITOR_SCHEDULE": "0 */15 * * * *",
    "DEPLOY_RECONCILE_SCHEDULE": "0 */2 * * * *",
    "UPLOAD_TRIGGER_SOURCE": "EventGrid",
}
WORKSPACE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-chatft/providers/"
    "Microsoft.MachineLearningServices/workspaces/ws-chatft"
)
RUN_DATA = {"runId": "chatft-demo-a1", "runType": "azureml.PipelineRun", "runStatus": "Completed", "runTags": {}}


class Request:
    """What the proxy worker passes to each library call: the message and its properties."""

    def __init__(self, message: Any, protos: Any) -> None:
        self.request = message
        self.properties = {"host": "127.0.0.1", "protos": protos}


def stub_handlers(seen: dict[str, Any]) -> None:
    """Record what each function hands shared.entry.app_wiring, instead of running the flows."""
    import shared.entry.app_wiring

    def ingest(client: Any) -> None:
        seen["ingest_upload"] = {
            "class": type(client).__name__,
            "connection": client.connection,
            "container": client.container_name,
            "blob": client.blob_name,
        }

    def job_event(event: Any) -> str:
        record = {"class": type(event).__name__, "data": event.get_json()}
        for name in ("event_type", "type", "source", "subject", "topic", "id"):
            value = getattr(event, name, None)
            if isinstance(value, str):
                record[name] = value
        seen.setdefault("job_events", []).append(record)
        return "stubbed"

    shared.entry.app_wiring.ingest_handler = ingest
    shared.entry.app_wiring.job_event_handler = job_event
    shared.entry.app_wiring.reconcile_handler = lambda: seen.setdefault("deploy_reconciler", []).append("ran")
    shared.entry.app_wiring.janitor_handler = lambda: seen.setdefault("endpoint_janitor", []).append("ran")


def blob_input(protos: Any, connection: str, container: str, blob: str) -> tuple[Any, dict[str, Any]]:
    """The blob trigger's SDK-type input: model binding data whose content is JSON *bytes*."""
    content = json.dumps({"Connection": connection, "ContainerName": container, "BlobName": blob}).encode()
    data = protos.TypedData(
        model_binding_data=protos.ModelBindingData(
            version="1.0", source="AzureStorageBlobs", content_type="application/json", content=content
        )
    )
    metadata = {
        "BlobTrigger": protos.TypedData(string=f"{container}/{blob}"),
        "Uri": protos.TypedData(string=f"https://stchatft.blob.core.windows.net/{container}/{blob}"),
        "name": protos.TypedData(string=blob),
    }
    return data, metadata


def event_inputs(protos: Any) -> list[Any]:
    """The same run event in the Event Grid schema and as a CloudEvent 1.0 (JSON strings, as the host sends)."""
    event_grid = {
        "topic": WORKSPACE,
        "subject": "experiments/x/runs/chatft-demo-a1",
        "eventType": "Microsoft.MachineLearningServices.RunCompleted",
        "eventTime": "2026-11-22T08:00:00.9584103Z",
        "id": str(uuid.uuid4()),
        "data": RUN_DATA,
        "dataVersion": "2",
        "metadataVersion": "1",
    }
    cloud = {
        "specversion": "1.0",
        "type": "Microsoft.MachineLearningServices.RunCompleted",
        "source": WORKSPACE,
        "id": str(uuid.uuid4()),
        "time": "2026-11-22T08:00:00.9584103Z",
        "subject": "experiments/x/runs/chatft-demo-a1",
        "datacontenttype": "application/json",
        "data": RUN_DATA,
    }
    return [protos.TypedData(json=json.dumps(event_grid)), protos.TypedData(json=json.dumps(cloud))]


def timer_input(protos: Any) -> Any:
    body = {
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {"Last": "2026-12-05T08:00:00+00:00", "Next": "2026-12-05T08:02:00+00:00"},
        "IsPastDue": False,
    }
    return protos.TypedData(json=json.dumps(body))


async def drive(protos: Any) -> dict[str, Any]:
    import azure_functions_runtime as worker

    seen: dict[str, Any] = {}
    out: dict[str, Any] = {"seen": seen}
    msg = protos.StreamingMessage
    init = await worker.worker_init_request(
        Request(
            msg(
                worker_init_request=protos.WorkerInitRequest(
                    host_version="4.1040.0",
                    capabilities={},
                    function_app_directory=str(ROOT),
                )
            ),
            protos,
        )
    )
    out["init"] = {"status": init.result.status, "error": init.result.exception.message}
    if init.result.status != protos.StatusResult.Success:
        return out
    stub_handlers(seen)
    meta = await worker.functions_metadata_request(
        Request(
            msg(functions_metadata_request=protos.FunctionsMetadataRequest(function_app_directory=str(ROOT))), protos
        )
    )
    functions = {f.name: f for f in meta.function_metadata_results}
    out["functions"] = {
        name: {"raw_bindings": [json.loads(b) for b in f.raw_bindings], "properties": dict(f.properties)}
        for name, f in functions.items()
    }
    for f in functions.values():
        await worker.function_load_request(
            Request(
                msg(function_load_request=protos.FunctionLoadRequest(function_id=f.function_id, metadata=f)), protos
            )
        )

    async def invoke(name: str, arg: str, data: Any, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        request = protos.InvocationRequest(
            invocation_id=str(uuid.uuid4()),
            function_id=functions[name].function_id,
            input_data=[protos.ParameterBinding(name=arg, data=data)],
            trigger_metadata=metadata or {},
        )
        response = await worker.invocation_request(Request(msg(invocation_request=request), protos))
        return {"status": response.result.status, "error": response.result.exception.message}

    invocations: dict[str, list[dict[str, Any]]] = {}
    binding = functions["ingest_upload"].raw_bindings
    connection = json.loads(binding[0])["connection"]
    data, metadata = blob_input(protos, connection, SETTINGS["UPLOAD_CONTAINER"], "team/chats.jsonl")
    invocations["ingest_upload"] = [await invoke("ingest_upload", "client", data, metadata)]
    invocations["job_events"] = [await invoke("job_events", "event", event) for event in event_inputs(protos)]
    invocations["deploy_reconciler"] = [await invoke("deploy_reconciler", "timer", timer_input(protos))]
    invocations["endpoint_janitor"] = [await invoke("endpoint_janitor", "timer", timer_input(protos))]
    out["invocations"] = invocations
    return out


def main() -> None:
    from importlib.metadata import version

    os.environ.update({k: v for k, v in SETTINGS.items() if k not in os.environ})
    sys.path.insert(0, str(ROOT))
    from tests.worker.protos import load

    protos = load()
    import azure_functions_runtime as worker

    worker.start_threadpool_executor()
    try:
        result = asyncio.run(drive(protos))
    finally:
        worker.stop_threadpool_executor()
    result["azure_functions"] = version("azure-functions")
    result["azure_functions_runtime"] = version("azure-functions-runtime")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
