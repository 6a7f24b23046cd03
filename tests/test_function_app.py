"""What the Functions host indexes, and what importing the app costs."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import azurefunctions.extensions.bindings.blob as blob

import function_app
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
        "source": "LogsAndContainerScan",
    }
    # The worker binds an SDK-type client (no whole-blob read) because of this annotation.
    parameter = inspect.signature(function.get_user_function()).parameters["client"]
    assert parameter.annotation in (blob.BlobClient, "blob.BlobClient")


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
        "heavy = ['azure.ai.ml', 'shared.chatdata.validator', 'shared.ingest', 'msgspec', 'rich', 'typer']\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    assert _fresh_python(code) == ""
