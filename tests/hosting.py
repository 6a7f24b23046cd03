"""Invoke indexed functions the way the Functions host and Python worker do, with real objects.

The helpers are the local host runner's own (shared/local/host.py), so tests and `chatft dev`
build trigger objects the same way.
"""

from __future__ import annotations

from typing import Any

from shared.local.host import blob_binding, indexed_functions, resolve

__all__ = ["blob_client_for_trigger", "find_function", "indexed_functions", "invoke_blob_trigger", "resolve"]


def find_function(app: Any, name: str) -> Any:
    return next(f for f in indexed_functions(app) if f.get_function_name() == name)


def blob_client_for_trigger(function: Any, blob_name: str) -> Any:
    """The SDK-type object the worker hands a blob-triggered function, from model binding data."""
    return blob_binding(function, blob_name)


def invoke_blob_trigger(app: Any, name: str, blob_name: str) -> Any:
    function = find_function(app, name)
    return function.get_user_function()(blob_binding(function, blob_name))
