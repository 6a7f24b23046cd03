"""The real Python 3.13+ worker library (PyPI azure-functions-runtime) indexes the app and invokes each
function with the TypedData the Functions host sends, over every admitted azure-functions 2.x we test.

Sources: Azure/azure-functions-python-worker (the library's handle_event.py / loader.py: `worker_init_request`
indexes the app and `functions_metadata_request` returns the RpcFunctionMetadata with `raw_bindings`;
bindings/meta.py `from_incoming_proto` decodes `model_binding_data` through the deferred-binding registry),
and the host's FunctionRpc.proto (ModelBindingData.content is `bytes`), transcribed in tests/worker/function_rpc.proto.
Each version runs in its own cold interpreter (tests/worker/host.py), as a worker process does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.deployed
if sys.version_info < (3, 13):
    pytest.skip(
        "the worker library needs Python 3.13+: `make test` runs this in .venv-deployed", allow_module_level=True
    )

from packaging.requirements import Requirement  # noqa: E402
from packaging.version import Version  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = Path(sys.prefix) / "sdk"  # azure-functions versions besides the environment's own (make setup)


def sdk_versions() -> list[tuple[str, str]]:
    """(version, PYTHONPATH overlay) for the environment's azure-functions and each installed overlay."""
    from importlib.metadata import version

    found = [(version("azure-functions"), "")]
    for overlay in sorted(OVERLAYS.glob("azure-functions-*")):
        found.append((overlay.name.removeprefix("azure-functions-"), str(overlay)))
    return found


def requirement() -> Requirement:
    [line] = [x for x in (ROOT / "requirements.txt").read_text().splitlines() if x.startswith("azure-functions")]
    return Requirement(line)


def drive(overlay: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (overlay, str(ROOT)) if p)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.worker.host"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_tested_versions_are_the_admitted_2x_line() -> None:
    """azure-functions 2.0.0's eventgrid.py has no `specversion` branch (2.1.0 added it back), so it is
    excluded; we test the oldest admitted 2.x and the newest the environment resolves."""
    spec = requirement().specifier
    tested = [Version(v) for v, _ in sdk_versions()]
    assert Version("2.0.0") not in spec and Version("2.0.1") not in spec
    assert all(v in spec for v in tested), (tested, str(spec))
    assert Version("2.1.0") in tested, "make setup installs the oldest admitted 2.x (2.1.0) beside the newest"
    assert max(tested) >= Version("2.3.0")


@pytest.mark.parametrize(("sdk", "overlay"), sdk_versions(), ids=[v for v, _ in sdk_versions()])
def test_the_real_worker_indexes_and_invokes_every_function(sdk: str, overlay: str) -> None:
    result = drive(overlay)
    assert result["azure_functions"] == sdk
    assert result["init"] == {"status": 1, "error": ""}, result["init"]
    functions = result["functions"]
    assert sorted(functions) == ["deploy_reconciler", "endpoint_janitor", "ingest_upload", "job_events"]

    [blob] = functions["ingest_upload"]["raw_bindings"]
    assert blob["type"] == "blobTrigger" and blob["source"] == "EventGrid"
    assert blob["properties"] == {"SupportsDeferredBinding": True}, "the host must send model binding data, not bytes"
    assert blob["path"] == "%UPLOAD_CONTAINER%/{name}" and blob["connection"] == "CHATFT_STORAGE"
    assert [b["type"] for b in functions["job_events"]["raw_bindings"]] == ["eventGridTrigger"]
    for timer, setting in (
        ("deploy_reconciler", "%DEPLOY_RECONCILE_SCHEDULE%"),
        ("endpoint_janitor", "%JANITOR_SCHEDULE%"),
    ):
        [binding] = functions[timer]["raw_bindings"]
        assert binding["type"] == "timerTrigger" and binding["schedule"] == setting and binding["runOnStartup"] is False

    ok = {"status": 1, "error": ""}
    assert all(call == ok for calls in result["invocations"].values() for call in calls), result["invocations"]
    seen = result["seen"]
    assert seen["ingest_upload"] == {
        "class": "BlobRef",
        "connection": "CHATFT_STORAGE",
        "container": "chat-uploads",
        "blob": "team/chats.jsonl",
    }
    schema, cloud = seen["job_events"]
    assert schema["class"] == "EventGridEvent" and schema["event_type"].endswith(".RunCompleted")
    assert cloud["class"] == "CloudEvent", f"azure-functions {sdk} read a CloudEvent as {cloud['class']}"
    assert cloud["type"] == "Microsoft.MachineLearningServices.RunCompleted"
    assert cloud["source"].endswith("/workspaces/ws-chatft")
    assert schema["data"]["runId"] == cloud["data"]["runId"] == "chatft-demo-a1"
    assert seen["deploy_reconciler"] == ["ran"] and seen["endpoint_janitor"] == ["ran"]
