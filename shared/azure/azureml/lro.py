"""Start Azure ML's long-running operations without a poller thread.

Every public `begin_*` of azure-ai-ml returns an azure-core `LROPoller`, and `LROPoller.__init__`
starts a daemon thread that polls until the operation ends (azure/core/polling/_poller.py). The
SDK gives its own `AzureMLPolling`, which prints a dot on every poll
(azure/ai/ml/_utils/_azureml_polling.py), and offers no public way to skip it: for deployments it
passes `polling=` itself (operations/_online_deployment_operations.py). A GPU deployment takes
30-60 minutes, so each call would leave a thread polling inside the Functions worker for that
long, while the reconciler re-reads the state on every tick anyway.

So the request is sent the way the public method sends it (the same entity-to-REST conversion,
the same generated operation), with `polling=False`: the generated operation then uses
azure-core's `NoPolling`, whose poller is finished at once and starts no thread
(`_restclient/arm_ml_service/operations/_operations.py`, `begin_create_or_update`/`begin_delete`).
The initial response's errors are mapped by the generated code exactly as before (404 ->
ResourceNotFoundError, 409 -> ResourceExistsError, other 4xx/5xx -> HttpResponseError).

These are the SDK's private attributes, so each is looked up defensively: if a future SDK moves
one, the public `begin_*` is used (a poller thread, but correct) and a warning says so. The
contract tests run this against the real SDK (tests/test_aml_rest_contract.py).
"""

from __future__ import annotations

import logging
from typing import Any

from shared.logs import log_step


def _fallback(what: str, exc: BaseException) -> None:
    log_step("azureml.lro_fallback", operation=what, error=f"{type(exc).__name__}: {exc}", level=logging.WARNING)


def start_endpoint_put(client: Any, endpoint: Any, location: str) -> None:
    """Create or update an online endpoint; do not wait. Like the public begin_create_or_update, zero-traffic
    entries are dropped first (operations/_online_endpoint_operations.py, `_strip_zeroes_from_traffic`): the
    SDK's `get` adds a 0 for every deployment without traffic."""
    ops = client.online_endpoints
    try:
        from azure.ai.ml.operations._online_endpoint_operations import _strip_zeroes_from_traffic

        if endpoint.traffic:
            endpoint.traffic = _strip_zeroes_from_traffic(endpoint.traffic)
        if endpoint.mirror_traffic:
            endpoint.mirror_traffic = _strip_zeroes_from_traffic(endpoint.mirror_traffic)
        rest_ops, scope, body = ops._online_operation, ops._operation_scope, endpoint._to_rest_online_endpoint(location)
        kwargs = dict(ops._init_kwargs)
    except (AttributeError, ImportError) as exc:
        _fallback("online_endpoints.begin_create_or_update", exc)
        ops.begin_create_or_update(endpoint)
        return
    rest_ops.begin_create_or_update(
        resource_group_name=scope.resource_group_name,
        workspace_name=scope.workspace_name,
        endpoint_name=endpoint.name,
        body=body,
        polling=False,
        **kwargs,
    )


def start_deployment_put(client: Any, deployment: Any, location: str) -> None:
    """Create or update an online deployment; do not wait. The model must be an ARM id (no upload)."""
    ops = client.online_deployments
    try:
        rest_ops, scope, body = ops._online_deployment, ops._operation_scope, deployment._to_rest_object(location)
        kwargs = dict(ops._init_kwargs)
    except AttributeError as exc:
        _fallback("online_deployments.begin_create_or_update", exc)
        ops.begin_create_or_update(deployment)
        return
    rest_ops.begin_create_or_update(
        resource_group_name=scope.resource_group_name,
        workspace_name=scope.workspace_name,
        endpoint_name=deployment.endpoint_name,
        deployment_name=deployment.name,
        body=body,
        polling=False,
        **kwargs,
    )


def start_endpoint_delete(client: Any, name: str) -> None:
    """Delete an online endpoint (and its deployments); do not wait."""
    ops = client.online_endpoints
    try:
        rest_ops, scope, kwargs = ops._online_operation, ops._operation_scope, dict(ops._init_kwargs)
    except AttributeError as exc:
        _fallback("online_endpoints.begin_delete", exc)
        ops.begin_delete(name=name)
        return
    rest_ops.begin_delete(
        resource_group_name=scope.resource_group_name,
        workspace_name=scope.workspace_name,
        endpoint_name=name,
        polling=False,
        **kwargs,
    )


def start_endpoint_tags_patch(client: Any, name: str, tags: dict[str, str]) -> None:
    """Replace an online endpoint's tags and nothing else; do not wait.

    The public OnlineEndpointOperations has no update: tags change only through
    `begin_create_or_update`, a PUT of the whole endpoint read back by `get` (whose traffic gains a 0 for
    every deployment without any, hence `_strip_zeroes_from_traffic`), which races a reconciler changing the
    traffic meanwhile. The generated client does have the ARM PATCH, `online_endpoints.begin_update`
    (`_restclient/arm_ml_service/operations/_operations.py`, `build_online_endpoints_update_request`:
    PATCH .../onlineEndpoints/{name}), whose body is a `PartialMinimalTrackedResourceWithIdentity`: only
    `tags` and `identity`. Sending `{"tags": ...}` alone cannot touch traffic, auth or deployments. The
    whole tag set is sent (the caller's read-modify-write), so a removed tag is simply absent."""
    ops = client.online_endpoints
    try:
        rest_ops, scope, kwargs = ops._online_operation, ops._operation_scope, dict(ops._init_kwargs)
        begin_update = rest_ops.begin_update
    except AttributeError as exc:
        _fallback("online_endpoints.begin_create_or_update (tags)", exc)
        endpoint = ops.get(name)
        endpoint.tags = dict(tags)
        if endpoint.traffic:
            endpoint.traffic = {k: v for k, v in endpoint.traffic.items() if v and int(v) != 0}
        ops.begin_create_or_update(endpoint)
        return
    begin_update(
        resource_group_name=scope.resource_group_name,
        workspace_name=scope.workspace_name,
        endpoint_name=name,
        body={"tags": dict(tags)},
        polling=False,
        **kwargs,
    )


def start_job_cancel(client: Any, name: str) -> None:
    """Cancel a job; do not wait. JobOperations.begin_cancel (operations/_job_operations.py) calls the generated
    `jobs.begin_cancel` of its 2023-02-01-preview client (POST .../jobs/{name}/cancel) with the scope's resource
    group and workspace; so does this, with `polling=False`."""
    ops = client.jobs
    try:
        rest_ops, scope, workspace = ops._operation_2023_02_preview, ops._operation_scope, ops._workspace_name
        kwargs = dict(ops._kwargs)
    except AttributeError as exc:
        _fallback("jobs.begin_cancel", exc)
        ops.begin_cancel(name)
        return
    rest_ops.begin_cancel(
        id=name,
        resource_group_name=scope.resource_group_name,
        workspace_name=workspace,
        polling=False,
        **kwargs,
    )
