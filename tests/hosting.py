"""Invoke indexed functions the way the Functions host and Python worker do, with real objects."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from azurefunctions.extensions.base import Datum

from shared.blobref import BlobRef, BlobRefConverter

_SETTING = re.compile(r"%([^%]+)%")


@dataclass(frozen=True)
class ModelBindingData:
    """The fields of the worker's ModelBindingData protobuf message that the extension reads."""

    version: str
    source: str
    content_type: str
    content: str


def resolve(expression: str, env: dict[str, str] | None = None) -> str:
    """Resolve %SETTING% expressions as the host does."""
    env = dict(os.environ) if env is None else env
    return _SETTING.sub(lambda m: env[m.group(1)], expression)


_INDEXED: dict[int, list[Any]] = {}


def indexed_functions(app: Any) -> list[Any]:
    """`app.get_functions()` once per app, as the worker does (a second call fails on duplicate names)."""
    if id(app) not in _INDEXED:
        _INDEXED[id(app)] = app.get_functions()
    return _INDEXED[id(app)]


def find_function(app: Any, name: str) -> Any:
    return next(f for f in indexed_functions(app) if f.get_function_name() == name)


def blob_client_for_trigger(function: Any, blob_name: str) -> BlobRef:
    """The SDK-type object the worker hands a blob-triggered function, from model binding data."""
    trigger = function.get_trigger()
    container = resolve(trigger.path).split("/", 1)[0]
    data = ModelBindingData(
        version="1.0",
        source="AzureStorageBlobs",
        content_type="application/json",
        content=json.dumps({"Connection": trigger.connection, "ContainerName": container, "BlobName": blob_name}),
    )
    return BlobRefConverter.decode(Datum(data, "model_binding_data"), trigger_metadata={}, pytype=BlobRef)


def invoke_blob_trigger(app: Any, name: str, blob_name: str) -> Any:
    function = find_function(app, name)
    return function.get_user_function()(blob_client_for_trigger(function, blob_name))
