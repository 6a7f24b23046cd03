"""What the Functions host indexes, and what importing the app costs."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import NamedTuple

from azurefunctions.extensions.base import meta
from azurefunctions.extensions.base.utils import get_raw_bindings

import function_app
from shared.azure.blobref import BlobRef
from tests.hosting import find_function

ROOT = Path(__file__).resolve().parent.parent


def test_ingest_function_metadata() -> None:
    function = find_function(function_app.app, "ingest_upload")
    [binding] = json.loads(function.get_function_json())["bindings"]
    assert binding == {
        "direction": "IN",
        "type": "blobTrigger",
        "name": "client",
        "path": "%UPLOAD_CONTAINER%/{name}",
        "connection": "CHATFT_STORAGE",
        "source": os.environ.get("UPLOAD_TRIGGER_SOURCE", "EventGrid"),
    }


class _ParamTypeInfo(NamedTuple):  # the worker's per-parameter record: binding name and Python type
    binding_name: str
    pytype: type


def test_the_worker_asks_the_host_for_model_binding_data_not_bytes() -> None:
    """What the Python worker does when indexing: resolve annotations, then build the raw bindings."""
    function = find_function(function_app.app, "ingest_upload")
    hints = typing.get_type_hints(function.get_user_function())
    assert hints["client"] is BlobRef
    assert meta._ConverterMeta.check_supported_type(hints["client"])
    input_types = {"client": _ParamTypeInfo("blobTrigger", hints["client"])}
    # The worker writes deferred-binding properties into the binding it indexes: work on a copy,
    # so the app object other tests read stays as indexed (this test ran first broke them).
    raw, info = get_raw_bindings(copy.deepcopy(function), input_types)
    [binding] = [json.loads(b) for b in raw]
    assert binding["properties"] == {"SupportsDeferredBinding": True}
    assert info == {"client": {BlobRef: "True"}}
    assert meta._ConverterMeta.get("blobTrigger").check_input_type_annotation(BlobRef)


def _fresh_python(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, **env}
    )
    return done.stdout.strip()


def test_event_grid_source_comes_from_the_setting() -> None:
    code = "import function_app, json; f = function_app.app.get_functions()[0]; print(json.loads(f.get_function_json())['bindings'][0]['source'])"
    assert _fresh_python(code, UPLOAD_TRIGGER_SOURCE="EventGrid") == "EventGrid"


def test_bad_trigger_source_fails_indexing_with_the_setting_name() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import function_app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "UPLOAD_TRIGGER_SOURCE": "Polling"},
    )
    assert done.returncode != 0
    assert "UPLOAD_TRIGGER_SOURCE" in done.stderr


def test_importing_the_app_loads_no_heavy_modules() -> None:
    code = (
        "import sys, function_app\n"
        "heavy = ['azure.ai.ml', 'azure.storage.blob', 'azure.identity', 'azure.data.tables', 'shared.domain.chatdata.validator',\n"
        "         'shared.flows.ingest', 'msgspec', 'xxhash', 'rich', 'typer']\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    assert _fresh_python(code) == ""


def test_the_deployed_azure_functions_decodes_cloudevents() -> None:
    """azure-functions 1.24.0's EventGridEventInConverter has no CloudEvents branch (its
    azure/functions/eventgrid.py never looks at `specversion`; 1.25.0 added it), so every event of
    a CloudEvents subscription would be read as an empty Event Grid event. The requirement's floor
    must exclude it, and the installed version must decode one."""
    from importlib.metadata import version

    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum
    from packaging.requirements import Requirement
    from packaging.version import Version

    [line] = [x for x in (ROOT / "requirements.txt").read_text().splitlines() if x.startswith("azure-functions")]
    assert Version("1.24.0") not in Requirement(line).specifier
    assert Version(version("azure-functions")) >= Version("1.25.0")
    body = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": {"runId": "x"}}
    event = EventGridEventInConverter.decode(Datum(json.dumps(body), "json"), trigger_metadata={})
    assert type(event).__name__ == "CloudEvent" and event.get_json() == {"runId": "x"}


def test_the_requirement_admits_azure_functions_on_the_deployed_python() -> None:
    """azure-functions 1.26.0 declares Requires-Python <3.13; 2.0.0 "is specifically built for Python 3.13
    and later" with the same API (Azure/azure-functions-python-library release 2.0.0). The remote build on
    the Python infra/main.bicep deploys must find a version, so the requirement must admit 2.x."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    bicep = (ROOT / "infra" / "main.bicep").read_text()
    [python] = re.findall(r"runtimeVersion: '(3\.\d+)'", bicep)
    [line] = [x for x in (ROOT / "requirements.txt").read_text().splitlines() if x.startswith("azure-functions")]
    spec = Requirement(line).specifier
    if Version(python) >= Version("3.13"):
        assert Version("2.1.0") in spec, f"Python {python} needs azure-functions 2.x: {line}"
        # 2.0.0's eventgrid.py lost the `specversion` branch (2.1.0 has it again): CloudEvents would decode
        # as empty Event Grid events (tests/test_real_worker.py drives the worker over the admitted versions)
        assert Version("2.0.0") not in spec and Version("2.0.1") not in spec, line
    assert Version("1.26.0") in spec, "Python 3.10-3.12 (local runs, CI) needs the 1.x line"


def test_host_json_is_valid_on_every_supported_plan() -> None:
    """functionTimeout: Consumption allows at most 10 minutes (default 5); Flex Consumption,
    Premium and Dedicated default to 30 and are unbounded (MicrosoftDocs azure-docs,
    includes/functions-timeout-duration.md). Was 00:30:00, which the Consumption plan refuses."""
    host = json.loads((ROOT / "host.json").read_text())
    hours, minutes, seconds = (int(x) for x in host["functionTimeout"].split(":"))
    timeout = hours * 3600 + minutes * 60 + seconds
    assert 0 < timeout <= 10 * 60
    assert host["version"] == "2.0" and host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
