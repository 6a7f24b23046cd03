"""An in-memory Azure ML management plane, served to the REAL azure-ai-ml `MLClient` as an azure-core transport.

`MLClient(credential, subscription, resource_group, workspace, transport=service)` hands `transport=` to every
generated service client it builds (azure/ai/ml/_ml_client.py, `MLClient.__init__`, the
`MachineLearningServicesMgmtClient(... **kwargs)` partials), so every workspace operation chatft calls runs the
SDK's own code -- entity-to-REST conversion, the generated request builders, the generated `error_map` and
`map_error`, the entity deserialisation -- and only the bytes on the wire come from here. Constructing the client
sends nothing (tests/test_aml_rest_contract.py checks it).

The service keeps state (endpoints, deployments, model versions, and renders the jobs the submission fake
holds), records every request, answers in ARM's shapes (resource JSON as the generated models in
azure/ai/ml/_restclient/arm_ml_service/models/_models.py name the fields; errors as
`{"error": {"code", "message"}}` with the real status codes), lets a test inject a failure per route
(`fail_next`), and moves provisioning states Creating/Updating -> Succeeded (or Failed) after N reads, like
tests/fake_aml.py did. A request to any other host or route is refused with an AssertionError naming it (and
kept in `unserved`, which the `aml` fixture checks, in case the code under test swallowed the error).

Inspection API (what the flow tests read; the collections mirror the old hand-written fakes):
    service.requests        every request: Recorded(method, path, query, parsed JSON body, status, headers)
    service.calls_to(method, path_regex)
    service.fail_next(method, path_regex, status, code, message=None, times=1)   answer with an ARM error
    service.unserved        routes it refused (the `aml` fixture asserts there are none)
    service.online_endpoints.calls / endpoints / scoring_uri / key / fail_next / reads_to_finish / finish(name)
        `endpoints` maps a name to the SDK entity (OnlineEndpoint._from_rest_object of the stored JSON);
        assigning an entity stores it as the service would; `begin_delete` is what DELETE does (replaceable)
    service.online_deployments.calls / deployments / fail_next / reads_to_finish / finish("endpoint/name")
    service.models.created / models
    service.jobs            the submission fake (tests/fake_aml.FakeJobs); GET jobs/{name} renders what it holds,
                            POST jobs/{name}/cancel cancels it (a finished one is refused); cancel_requests lists them
    service.workspaces      .get(name) -> Workspace entity; replace it to change the workspace's location
    service.compute         .clusters (add_cluster) / .sizes / .usages
    service.datastores      name -> (storage account, container)
`fail_next` on endpoints/deployments (a list of keys) makes that resource's next operation end Failed;
`service.fail_next(...)` makes the next matching HTTP request fail.

Deletes take effect at once (the old fakes did the same); a real endpoint stays "Deleting" for minutes.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from azure.ai.ml._restclient.arm_ml_service import models as rest
from azure.ai.ml.entities import (
    AmlCompute,
    ManagedOnlineDeployment,
    Model,
    OnlineDeployment,
    OnlineEndpoint,
    Workspace,
)
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import case_insensitive_dict
from azure.identity import CredentialUnavailableError

from shared.domain.workspace import CREATED_AT_FORMAT
from tests.transport import InMemoryTransport

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-chatft"
WORKSPACE = "ws-chatft"
TENANT = "11111111-1111-1111-1111-111111111111"
HOST = "management.azure.com"  # AzureCloud's resource_manager (azure/ai/ml/_azure_environments.py)
PROVIDER = "Microsoft.MachineLearningServices"
WORKSPACE_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{PROVIDER}/workspaces/{WORKSPACE}"
)

_WS = rf"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{PROVIDER}/workspaces/(?P<ws>[^/]+)"
_LOC = rf"/subscriptions/(?P<sub>[^/]+)/providers/{PROVIDER}/locations/(?P<loc>[^/]+)"
_NAME = r"([^/]+)"

# (VM size, family, vCPUs, GPUs) as the vmSizes list reports them for a region with A100s.
SIZES = [
    ("Standard_D12_v2", "standardDv2Family", 4, 0),
    ("Standard_NC6", "standardNCFamily", 6, 1),
    ("Standard_NC6s_v3", "standardNCSv3Family", 6, 1),
    ("Standard_NC24ads_A100_v4", "standardNCADSA100v4Family", 24, 1),
    ("Standard_NC48ads_A100_v4", "standardNCADSA100v4Family", 48, 2),
    ("Standard_NC96ads_A100_v4", "standardNCADSA100v4Family", 96, 4),
]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class FakeCredential:
    """A TokenCredential. The token is an unsigned JWT with a `tid`, like Entra ID's: the SDK decodes it to
    append `&tid=` to studio URLs (azure/ai/ml/operations/_job_operations.py, `_append_tid_to_studio_url`)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.unavailable = 0
        """The next this-many token requests fail as a managed identity that is not answering yet does:
        azure-identity's ManagedIdentityCredential raises CredentialUnavailableError (a ClientAuthenticationError
        without a response, azure/identity/_exceptions.py) when the identity endpoint cannot be reached."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self.unavailable > 0:
            self.unavailable -= 1
            raise CredentialUnavailableError(
                message="ManagedIdentityCredential authentication unavailable, no response from the IMDS endpoint."
            )
        self.scopes.append(scopes)
        expires = int(time.time()) + 3600
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'tid': TENANT, 'exp': expires})}."
        return AccessToken(token, expires)


class ServiceError(Exception):
    """What a handler raises to answer with an ARM error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def check_tags(tags: Any) -> None:
    """ARM refuses a tag value over 256 characters and a name over 512 ("The tag name has a limit of 512
    characters and the tag value has a limit of 256 characters": MicrosoftDocs azure-docs
    articles/azure-resource-manager/management/tag-resources.md, "Limitations") with a 400; the generated
    operations raise HttpResponseError for it (a 400 is not in their `error_map`)."""
    for key, value in (tags or {}).items():
        if len(str(key)) > 512 or len(str(value)) > 256:
            raise ServiceError(
                400, "InvalidTag", f"The tag '{key}' is longer than Azure allows (value: {len(str(value))})"
            )


def not_found(what: str) -> ServiceError:
    # Azure ML's answer for a missing resource, as the SDK prints it:
    # "ResourceNotFoundError: (NotFound) The specified resource was not found." (Azure/azure-cli-extensions#7107)
    return ServiceError(404, "NotFound", f"The specified resource was not found: {what}.")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    code: str
    message: str
    times: int


class _RawResponse:
    def close(self) -> None:
        pass


class RestResponse(HttpResponseImpl):
    """An azure.core.rest.HttpResponse with its body already in memory (what the pipeline and the generated
    operations call: status_code, headers, read(), json(), text(), iter_bytes())."""

    def __init__(self, request: Any, status: int, body: bytes, headers: dict[str, str]) -> None:
        super().__init__(
            request=request,
            internal_response=_RawResponse(),
            status_code=status,
            reason=_REASONS.get(status, "Unknown"),
            content_type=headers.get("Content-Type", "application/json"),
            headers=case_insensitive_dict(headers),
            stream_download_generator=lambda **kwargs: iter([body]),
        )
        self._content = body


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _now() -> str:
    return datetime.now(timezone.utc).strftime(CREATED_AT_FORMAT)


def _system_data(created: str) -> dict[str, str]:
    iso = datetime.strptime(created, CREATED_AT_FORMAT).isoformat()
    return {"createdAt": iso, "createdBy": "chatft-tests", "createdByType": "Application", "lastModifiedAt": iso}


# --- provisioning: Creating/Updating -> Succeeded (or Failed) after N reads, as tests/fake_aml.py did ---


class _Progress:
    def __init__(self, reads_to_finish: int) -> None:
        self.reads_to_finish = reads_to_finish
        self.fail_next: list[str] = []  # keys whose next operation ends Failed
        self._reads: dict[str, int] = {}
        self._outcome: dict[str, str] = {}
        self._pending: dict[str, str] = {}

    def _started(self, key: str, pending: str) -> None:
        self._reads[key], self._pending[key] = 0, pending
        self._outcome[key] = "Failed" if self.fail_next and self.fail_next[0] == key else "Succeeded"
        if self._outcome[key] == "Failed":
            self.fail_next.pop(0)

    def _state(self, key: str, *, read: bool) -> str:
        if key not in self._pending:
            return "Succeeded"
        if read:
            self._reads[key] += 1
        if self._reads[key] > self.reads_to_finish:
            return self._outcome[key]
        return self._pending[key]

    def finish(self, key: str) -> None:
        """End the operation on `key` now (its next read reports the outcome)."""
        if key in self._reads:
            self._reads[key] = self.reads_to_finish + 1

    def _forget(self, key: str) -> None:
        for table in (self._reads, self._outcome, self._pending):
            table.pop(key, None)


class _EntityView(MutableMapping):
    """A mapping over the service's stored JSON that reads and writes SDK entities."""

    def __init__(
        self,
        store: dict[Any, dict[str, Any]],
        to_entity: Callable[[Any, dict], Any],
        to_json: Callable[[Any, Any], dict],
    ) -> None:
        self._store, self._to_entity, self._to_json = store, to_entity, to_json

    def __getitem__(self, key: Any) -> Any:
        return self._to_entity(key, self._store[key])

    def __setitem__(self, key: Any, value: Any) -> None:
        self._store[key] = self._to_json(key, value)

    def __delitem__(self, key: Any) -> None:
        del self._store[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._store))

    def __len__(self) -> int:
        return len(self._store)


class OnlineEndpoints(_Progress):
    def __init__(self, service: AmlRestService, scoring_uri: str, key: str, reads_to_finish: int) -> None:
        super().__init__(reads_to_finish)
        self._service = service
        self.scoring_uri, self.key = scoring_uri, key
        self.calls: list[tuple[str, str]] = []
        self._json: dict[str, dict[str, Any]] = {}
        self.endpoints = _EntityView(self._json, self._entity, self._from_entity)

    def _resource(self, name: str, *, read: bool) -> dict[str, Any]:
        doc = json.loads(json.dumps(self._json[name]))
        doc["properties"]["provisioningState"] = self._state(name, read=read)
        return doc

    def _entity(self, name: str, doc: dict[str, Any]) -> OnlineEndpoint:
        doc = json.loads(json.dumps(doc))
        doc["properties"]["provisioningState"] = self._state(name, read=False)
        return OnlineEndpoint._from_rest_object(rest.OnlineEndpoint(doc))

    def _from_entity(self, name: str, entity: OnlineEndpoint) -> dict[str, Any]:
        """An endpoint a test puts in place, stored as the service would hold it."""
        body = json.loads(json.dumps(entity._to_rest_online_endpoint(self._service.location()).as_dict()))
        created = (entity.properties or {}).get("createdAt") or _now()
        doc = self._document(name, body, created)
        doc["properties"]["scoringUri"] = entity.scoring_uri or self.scoring_uri
        self._pending.pop(name, None)
        if entity.provisioning_state and entity.provisioning_state != "Succeeded":
            self._started(name, entity.provisioning_state)
        return doc

    def _document(self, name: str, body: dict[str, Any], created: str) -> dict[str, Any]:
        props = dict(body.get("properties") or {})
        system = {
            "azureml.onlineendpointid": f"{WORKSPACE_ID}/onlineEndpoints/{name}".lower(),
            "AzureAsyncOperationUri": "",
            "createdAt": created,
        }
        props["properties"] = {**(props.get("properties") or {}), **system}
        props.setdefault("authMode", "Key")
        props.setdefault("traffic", {})
        props["publicNetworkAccess"] = props.get("publicNetworkAccess") or "Enabled"
        host = f"{name}.{self._service.location()}.inference.ml.azure.com"
        props["scoringUri"] = self.scoring_uri
        props["swaggerUri"] = f"https://{host}/swagger.json"
        return {
            "id": f"{WORKSPACE_ID}/onlineEndpoints/{name}",
            "name": name,
            "type": f"{PROVIDER}/workspaces/onlineEndpoints",
            "location": body.get("location") or self._service.location(),
            "tags": dict(body.get("tags") or {}),
            "kind": body.get("kind") or "Managed",
            "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": TENANT},
            "properties": props,
            "systemData": _system_data(created),
        }

    def put(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        check_tags(body.get("tags"))
        existing = self._json.get(name)
        if existing is not None:
            created = existing["properties"]["properties"]["createdAt"]
            doc = self._document(name, body, created)
            doc["properties"]["scoringUri"] = existing["properties"]["scoringUri"]
            self.calls.append(("update", name))
            self._json[name] = doc
            self._started(name, "Updating")
            return 200, self._resource(name, read=False)
        self.calls.append(("create", name))
        self._json[name] = self._document(name, body, _now())
        self._started(name, "Creating")
        return 201, self._resource(name, read=False)

    def begin_delete(self, name: str | None = None, **kwargs: Any) -> bool:
        """What the service does on DELETE; a test may replace it (raise an HttpResponseError to make the
        service answer with that error). Returns whether the endpoint existed."""
        if name not in self._json:
            return False
        self.calls.append(("delete", name))
        del self._json[name]
        self._forget(name)
        for key in [k for k in self._service.online_deployments._json if k[0] == name]:
            del self._service.online_deployments._json[key]
            self._service.online_deployments._forget(f"{key[0]}/{key[1]}")
        return True


class OnlineDeployments(_Progress):
    def __init__(self, service: AmlRestService, reads_to_finish: int) -> None:
        super().__init__(reads_to_finish)
        self._service = service
        self.calls: list[tuple[str, str, str]] = []
        self._json: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments = _EntityView(self._json, self._entity, self._from_entity)

    def _resource(self, key: tuple[str, str], *, read: bool) -> dict[str, Any]:
        doc = json.loads(json.dumps(self._json[key]))
        doc["properties"]["provisioningState"] = self._state("/".join(key), read=read)
        return doc

    def _entity(self, key: tuple[str, str], doc: dict[str, Any]) -> OnlineDeployment:
        doc = json.loads(json.dumps(doc))
        doc["properties"]["provisioningState"] = self._state("/".join(key), read=False)
        deployment = OnlineDeployment._from_rest_object(rest.OnlineDeployment(doc))
        deployment.endpoint_name = key[0]
        return deployment

    def _from_entity(self, key: tuple[str, str], entity: ManagedOnlineDeployment) -> dict[str, Any]:
        body = json.loads(json.dumps(entity._to_rest_object(self._service.location()).as_dict()))
        return self._document(key, body)

    def _document(self, key: tuple[str, str], body: dict[str, Any]) -> dict[str, Any]:
        endpoint, name = key
        props = dict(body.get("properties") or {})
        # the service answers with its defaults filled in (OnlineDeployment._from_rest_object reads scaleSettings)
        probe = {
            "failureThreshold": 30,
            "successThreshold": 1,
            "timeout": "PT2S",
            "period": "PT10S",
            "initialDelay": "PT10S",
        }
        props.setdefault("endpointComputeType", "Managed")
        props.setdefault("scaleSettings", {"scaleType": "Default"})
        props["livenessProbe"] = {**probe, **(props.get("livenessProbe") or {})}
        props["readinessProbe"] = {**probe, "failureThreshold": 30, **(props.get("readinessProbe") or {})}
        props["requestSettings"] = {
            "maxConcurrentRequestsPerInstance": 1,
            "maxQueueWait": "PT0.5S",
            "requestTimeout": "PT5S",
            **(props.get("requestSettings") or {}),
        }
        props.setdefault("egressPublicNetworkAccess", "Enabled")
        props.setdefault("appInsightsEnabled", False)
        return {
            "id": f"{WORKSPACE_ID}/onlineEndpoints/{endpoint}/deployments/{name}",
            "name": name,
            "type": f"{PROVIDER}/workspaces/onlineEndpoints/deployments",
            "location": body.get("location") or self._service.location(),
            "tags": dict(body.get("tags") or {}),
            "kind": body.get("kind") or "Managed",
            "sku": body.get("sku") or {"name": "Default", "capacity": 1},
            "properties": props,
            "systemData": _system_data(_now()),
        }

    def put(self, key: tuple[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if key[0] not in self._service.online_endpoints._json:
            raise not_found(f"online endpoint {key[0]}")
        status = 200 if key in self._json else 201
        self.calls.append(("create" if status == 201 else "update", *key))
        self._json[key] = self._document(key, body)
        self._started("/".join(key), "Creating" if status == 201 else "Updating")
        return status, self._resource(key, read=False)


class ModelVersions:
    """The workspace's model versions. A PUT of an existing version updates it (200): that is how the SDK
    itself archives a version (azure/ai/ml/operations/_model_operations.py `archive` -> azure/ai/ml/_utils/
    _asset_utils.py `_archive_or_restore` -> `version_operation.create_or_update` of the existing version), so a
    repeated registration is not a conflict; changing the path is refused with the message the SDK matches
    (azure/ai/ml/_artifacts/_constants.py, ASSET_PATH_ERROR)."""

    def __init__(self) -> None:
        self.created: list[Model] = []
        self._json: dict[tuple[str, str], dict[str, Any]] = {}
        self.models = _EntityView(self._json, lambda key, doc: self._entity(doc), self._from_entity)

    @staticmethod
    def _entity(doc: dict[str, Any]) -> Model:
        return Model._from_rest_object(rest.ModelVersion(doc))

    def _from_entity(self, key: tuple[str, str], entity: Model) -> dict[str, Any]:
        return self._document(key, json.loads(json.dumps(entity._to_rest_object().as_dict())))

    def _document(self, key: tuple[str, str], body: dict[str, Any]) -> dict[str, Any]:
        name, version = key
        props = dict(body.get("properties") or {})
        props.setdefault("isArchived", False)
        props.setdefault("isAnonymous", False)
        props["flavors"] = props.get("flavors") or {}  # always present in answers: Model._from_rest_object reads it
        props["provisioningState"] = "Succeeded"
        created = _now()
        return {
            "id": f"{WORKSPACE_ID}/models/{name}/versions/{version}",
            "name": version,
            "type": f"{PROVIDER}/workspaces/models/versions",
            "properties": props,
            "systemData": _system_data(created),
        }

    def put(self, key: tuple[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        doc = self._document(key, body)
        existing = self._json.get(key)
        if existing is not None:
            if existing["properties"].get("modelUri") != doc["properties"].get("modelUri"):
                raise ServiceError(400, "UserError", "Asset paths cannot be updated.")
            doc["systemData"] = existing["systemData"]
            self._json[key] = doc
            return 200, doc
        self._json[key] = doc
        self.created.append(self._entity(doc))
        return 201, doc

    def latest(self, name: str) -> list[dict[str, Any]]:
        versions = [doc for (n, _), doc in self._json.items() if n == name]
        return versions[-1:]


class Workspaces:
    """What GET workspaces/{name} describes; `get` is the hook a test may replace (tests/test_janitor.py)."""

    def __init__(self, location: str) -> None:
        self.location = location

    def get(self, name: str | None = None) -> Workspace:
        return Workspace(name=name or WORKSPACE, location=self.location)


class Compute:
    def __init__(self) -> None:
        self.clusters: dict[str, dict[str, Any]] = {}
        self.sizes = list(SIZES)
        self.usages: dict[str, tuple[int, int]] = {"standardNCADSA100v4Family": (0, 96)}  # family -> (used, limit)

    def add_cluster(self, cluster: AmlCompute, provisioning_state: str = "Succeeded") -> None:
        self.clusters[cluster.name] = {
            "id": f"{WORKSPACE_ID}/computes/{cluster.name}",
            "name": cluster.name,
            "type": f"{PROVIDER}/workspaces/computes",
            "location": cluster.location,
            "properties": {
                "computeType": "AmlCompute",
                "computeLocation": cluster.location,
                "provisioningState": provisioning_state,
                "isAttachedCompute": False,
                "disableLocalAuth": True,
                "properties": {
                    "osType": "Linux",
                    "vmSize": cluster.size,
                    "vmPriority": "Dedicated",
                    "scaleSettings": {
                        "maxNodeCount": cluster.max_instances or 1,
                        "minNodeCount": cluster.min_instances or 0,
                        "nodeIdleTimeBeforeScaleDown": "PT120S",
                    },
                    "allocationState": "Steady",
                    "currentNodeCount": 0,
                    "targetNodeCount": 0,
                },
            },
        }

    def size_list(self) -> dict[str, Any]:
        return {
            "value": [
                {
                    "name": name,
                    "family": family,
                    "vCPUs": cpus,
                    "gpus": gpus,
                    "osVhdSizeMB": 1047552,
                    "maxResourceVolumeMB": cpus * 28 * 1024,
                    "memoryGB": cpus * 9.0,
                    "lowPriorityCapable": True,
                    "premiumIO": True,
                    "supportedComputeTypes": ["Compute Instance", "AmlCompute"],
                }
                for name, family, cpus, gpus in self.sizes
            ]
        }

    def usage_list(self, location: str) -> dict[str, Any]:
        return {
            "value": [
                {
                    "id": f"/subscriptions/{SUBSCRIPTION}/providers/{PROVIDER}/locations/{location}/usages/{family}",
                    "amlWorkspaceLocation": location,
                    "type": f"{PROVIDER}/vmFamily/usages",
                    "unit": "Count",
                    "currentValue": used,
                    "limit": limit,
                    "name": {"value": family, "localizedValue": f"{family} vCPUs"},
                }
                for family, (used, limit) in self.usages.items()
            ]
        }


def studio_url(job_name: str, *, as_the_sdk_returns_it: bool = True) -> str:
    """The Studio link of a job as the service gives it (`?wsid=`), and as the SDK hands it over: with `&tid=`
    and the tenant from the credential's token appended (_job_operations.py, `_append_tid_to_studio_url`)."""
    url = f"https://ml.azure.com/runs/{job_name}?wsid=/subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}/workspaces/{WORKSPACE}"
    return f"{url}&tid={TENANT}" if as_the_sdk_returns_it else url


def _job_document(job: Any) -> dict[str, Any]:
    """A pipeline job as GET jobs/{name} returns it (JobBase with PipelineJob properties), from the entity the
    submission fake holds."""
    studio = studio_url(job.name, as_the_sdk_returns_it=False)
    return {
        "id": f"{WORKSPACE_ID}/jobs/{job.name}",
        "name": job.name,
        "type": f"{PROVIDER}/workspaces/jobs",
        "properties": {
            "jobType": "Pipeline",
            "displayName": job.display_name,
            "experimentName": job.experiment_name or "Default",
            "status": job.status or "NotStarted",
            "tags": dict(job.tags or {}),
            "properties": {"azureml.runsource": "azureml.PipelineRun", "runSource": "MFE"},
            "isArchived": False,
            "computeId": None,
            "services": {
                "Tracking": {"jobServiceType": "Tracking", "endpoint": "azureml://eastus.api.azureml.ms/mlflow"},
                "Studio": {"jobServiceType": "Studio", "endpoint": studio},
            },
            "inputs": {},
            "outputs": {"trained_model": {"jobOutputType": "mlflow_model", "mode": "ReadWriteMount"}},
            "jobs": {},
            "settings": {"_source": "YAML.COMPONENT", "force_rerun": False},
        },
        "systemData": _system_data(_now()),
    }


LOG_ACCOUNT = "stchatft"
"""The workspace's storage account (GET workspaces/{name} names it): Azure ML keeps each run's logs in its `azureml`
container, under ExperimentRun/dcid.<run id>/, and the run history hands out read-only SAS URLs to them."""


class RunHistory:
    """Azure ML's run history, the data plane `az ml job stream` reads (served by AmlRestService.send).

    The routes, as azure-ai-ml 1.35 calls them for a pipeline job and its steps:
      - GET https://<location>.api.azureml.ms/discovery: the workspace's `discoveryUrl` (GET workspaces/{name}),
        read by `JobOperations._get_workspace_url`, which takes its `api` entry (WorkspaceDiscoveryUrlKey.API in
        azure/ai/ml/constants/_common.py) as the run history's base URL (`JobOperations._runs_operations`);
      - GET <api>/history/v1.0/subscriptions/.../workspaces/{ws}/runs/{run id}/details: a RunDetails, whose
        `logFiles` maps each log file's name to a SAS URL (`RunOperations.get_run_details`; the field names are
        RunDetails._attribute_map in azure/ai/ml/_restclient/runhistory/models/_models_py3.py);
      - GET .../runs/{run id}/children: a PaginatedRunList (`value`: Run documents, `nextLink`) of the run's child
        runs, each turned into a _BaseJob by `_BaseJob._load_from_rest` (`RunOperations.get_run_children`);
      - GET https://<account>.blob.core.windows.net/azureml/ExperimentRun/dcid.<run id>/<file>?<sas>: the file's
        bytes (`download_text_from_url` in azure/ai/ml/_utils/utils.py; a 404 reads as "").
    A pipeline run's logs are `logs/azureml/executionlogs.txt` (and stdout/stderr logs), a step's
    `user_logs/std_log.txt` among system logs: the names JobLogPattern (azure/ai/ml/constants/_job/job.py)
    matches, and the ones a real pipeline's RunDetails lists.

    A test steers it with `add_step(parent, run id, name)` and `write(run id, file, text)` (appends); the root
    run's status is its job's (service.jobs), a step's is `steps[...]["status"]`.
    """

    def __init__(self, service: AmlRestService) -> None:
        self._service = service
        self.children: dict[str, list[str]] = {}
        self.steps: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, dict[str, str]] = {}

    def add_step(self, parent: str, run_id: str, display_name: str, status: str = "Running") -> None:
        root = self.steps[parent]["rootRunId"] if parent in self.steps else parent
        self.children.setdefault(parent, []).append(run_id)
        self.steps[run_id] = {
            "runId": run_id,
            "runUuid": str(uuid.uuid4()),
            "parentRunId": parent,
            "rootRunId": root,
            "experimentId": str(uuid.uuid4()),
            "status": status,
            "displayName": display_name,
            "name": display_name,
            "runType": "azureml.StepRun",
            "createdUtc": _now(),
            "properties": {"azureml.runsource": "azureml.StepRun", "azureml.pipelinerunid": root},
            "tags": {},
        }

    def write(self, run_id: str, file: str, text: str) -> None:
        files = self.logs.setdefault(run_id, {})
        files[file] = files.get(file, "") + text

    def hosts(self) -> tuple[str, str]:
        return f"{self._service.location()}.api.azureml.ms", f"{LOG_ACCOUNT}.blob.core.windows.net"

    def _status(self, run_id: str) -> str:
        if run_id in self.steps:
            return self.steps[run_id]["status"]
        jobs = self._service.jobs
        try:
            return str(jobs.get(run_id).status or "NotStarted") if jobs is not None else ""
        except ResourceNotFoundError as exc:
            raise not_found(f"run {run_id}") from exc

    def _sas(self, run_id: str, file: str) -> str:
        return (
            f"https://{LOG_ACCOUNT}.blob.core.windows.net/azureml/ExperimentRun/dcid.{run_id}/{file}"
            "?sv=2019-07-07&sr=b&sig=c2lnbmF0dXJl&se=2030-01-01T00%3A00%3A00Z&sp=r"
        )

    def answer(self, url: Any) -> tuple[int, bytes, str]:
        """(status, body, content type) for a GET to the run history, its discovery or a log blob."""
        api, blob = self.hosts()
        if url.netloc == blob:
            found = re.fullmatch(r"/azureml/ExperimentRun/dcid\.([^/]+)/(.+)", url.path)
            text = self.logs.get(found.group(1), {}).get(found.group(2)) if found else None
            if text is None:
                return 404, b"<Error><Code>BlobNotFound</Code></Error>", "application/xml"
            return 200, text.encode("utf-8"), "application/octet-stream"
        if url.path == "/discovery":
            base = f"https://{api}"
            keys = ("api", "catalog", "experimentation", "history", "hyperdrive", "labeling", "modelmanagement")
            doc: Any = {
                **{key: base for key in keys},
                "pipelines": f"{base}/pipelines",
                "studio": "https://ml.azure.com",
            }
            return 200, json.dumps(doc).encode(), "application/json"
        run = re.fullmatch(rf"/history/v1\.0{_WS}/runs/([^/]+)/(details|children)", url.path)
        if run is None:
            raise AssertionError(f"the run history has no route for {url.path}")
        run_id, what = run.group(4), run.group(5)
        try:
            status = self._status(run_id)
        except ServiceError as exc:
            return exc.status, json.dumps(_error(exc.code, exc.message)).encode(), "application/json"
        if what == "children":
            doc = {"value": [self.steps[c] for c in self.children.get(run_id, [])], "nextLink": None}
        else:
            doc = {
                **{k: v for k, v in self.steps.get(run_id, {"runId": run_id}).items() if k != "displayName"},
                "status": status,
                "target": "serverless",
                "warnings": [],
                "logFiles": {file: self._sas(run_id, file) for file in sorted(self.logs.get(run_id, {}))},
            }
        return 200, json.dumps(doc).encode(), "application/json"


class AmlRestService(InMemoryTransport):
    """The transport. `send` routes by method and path (the api-version is ignored)."""

    def __init__(
        self,
        *,
        location: str = "eastus",
        scoring_uri: str = "http://127.0.0.1:9/score",
        key: str = "test-key",
        reads_to_finish: int = 1,
        jobs: Any = None,
    ) -> None:
        self.workspaces = Workspaces(location)
        self.online_endpoints = OnlineEndpoints(self, scoring_uri, key, reads_to_finish)
        self.online_deployments = OnlineDeployments(self, reads_to_finish)
        self.models = ModelVersions()
        self.compute = Compute()
        self.runs = RunHistory(self)
        self.datastores: dict[str, tuple[str, str]] = {}  # name -> (storage account, container), blob, no secrets
        self.jobs = jobs  # anything with get(name) raising ResourceNotFoundError; None: no jobs
        self.cancel_requests: list[str] = []  # job names POSTed to jobs/{name}/cancel, in order
        self.mlflow: Any = None  # the workspace's MLflow tracking server (tests/mlflow_rest.py), set by the fixture
        self.credential: Any = None  # the FakeCredential of the MLClient workspace_client builds
        self.requests: list[Recorded] = []
        self.unserved: list[str] = []
        self._failures: list[_Failure] = []
        self._operations: dict[str, tuple[str, Any]] = {}  # async operation id -> (kind, key)
        self._lock = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., tuple[int, Any, dict[str, str]]]]] = [
            ("GET", re.compile(rf"^{_WS}$"), self._get_workspace),
            ("GET", re.compile(rf"^{_WS}/onlineEndpoints$"), self._list_endpoints),
            ("GET", re.compile(rf"^{_WS}/onlineEndpoints/{_NAME}$"), self._get_endpoint),
            ("PUT", re.compile(rf"^{_WS}/onlineEndpoints/{_NAME}$"), self._put_endpoint),
            ("PATCH", re.compile(rf"^{_WS}/onlineEndpoints/{_NAME}$"), self._patch_endpoint),
            ("DELETE", re.compile(rf"^{_WS}/onlineEndpoints/{_NAME}$"), self._delete_endpoint),
            ("POST", re.compile(rf"^{_WS}/onlineEndpoints/{_NAME}/listKeys$"), self._list_keys),
            ("GET", re.compile(rf"^{_WS}/onlineEndpoints/{_NAME}/deployments$"), self._list_deployments),
            ("GET", re.compile(rf"^{_WS}/onlineEndpoints/{_NAME}/deployments/{_NAME}$"), self._get_deployment),
            ("PUT", re.compile(rf"^{_WS}/onlineEndpoints/{_NAME}/deployments/{_NAME}$"), self._put_deployment),
            ("GET", re.compile(rf"^{_WS}/models/{_NAME}/versions$"), self._list_model_versions),
            ("GET", re.compile(rf"^{_WS}/models/{_NAME}/versions/{_NAME}$"), self._get_model_version),
            ("PUT", re.compile(rf"^{_WS}/models/{_NAME}/versions/{_NAME}$"), self._put_model_version),
            ("GET", re.compile(rf"^{_WS}/models/{_NAME}$"), self._get_model_container),
            ("GET", re.compile(rf"^{_WS}/jobs/{_NAME}$"), self._get_job),
            ("POST", re.compile(rf"^{_WS}/jobs/{_NAME}/cancel$"), self._cancel_job),
            ("GET", re.compile(rf"^{_WS}/computes/{_NAME}$"), self._get_compute),
            ("GET", re.compile(rf"^{_WS}/datastores/{_NAME}$"), self._get_datastore),
            ("GET", re.compile(rf"^{_LOC}/vmSizes$"), self._list_sizes),
            ("GET", re.compile(rf"^{_LOC}/usages$"), self._list_usages),
            ("GET", re.compile(rf"^{_LOC}/mfeOperationsStatus/{_NAME}$"), self._operation_status),
            ("GET", re.compile(rf"^{_LOC}/mfeOperationResults/{_NAME}$"), self._operation_result),
        ]

    # --- what tests call ---

    def location(self) -> str:
        return self.workspaces.get(WORKSPACE).location

    def fail_next(
        self, method: str, path_regex: str, status: int, code: str, message: str | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` requests whose method matches and whose path matches `path_regex`
        (re.search) with an ARM error."""
        with self._lock:
            self._failures.append(
                _Failure(method.upper(), re.compile(path_regex), status, code, message or f"injected {code}", times)
            )

    def calls_to(self, method: str, path_regex: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method.upper() and re.search(path_regex, r.path)]

    # --- azure-core transport (plumbing: tests/transport.py) ---

    def send(self, request: Any, **kwargs: Any) -> RestResponse:
        url = urlsplit(request.url)
        route = f"{request.method} {url.scheme}://{url.netloc}{url.path}"
        if url.scheme == "https" and url.netloc in self.runs.hosts() and request.method == "GET":
            return self._run_history(request, url, route)
        if url.scheme != "https" or url.netloc != HOST:
            self.unserved.append(route)
            raise AssertionError(f"the Azure ML test service refuses a request to another host: {route}")
        body = _json_body(request)
        recorded = Recorded(request.method, url.path, dict(parse_qsl(url.query)), body)
        with self._lock:
            self.requests.append(recorded)
            status, payload, headers = self._dispatch(request.method, url.path, body, route)
        recorded.status, recorded.headers = status, headers
        content = b"" if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "x-ms-request-id": str(uuid.uuid4()), **headers}
        return RestResponse(request, status, content, headers)

    def _run_history(self, request: Any, url: Any, route: str) -> RestResponse:
        """The run history and its log blobs (RunHistory), recorded like every other request."""
        recorded = Recorded(request.method, url.path, dict(parse_qsl(url.query)), None)
        with self._lock:
            self.requests.append(recorded)
            try:
                status, content, kind = self.runs.answer(url)
            except AssertionError:
                self.unserved.append(route)
                raise
        recorded.status = status
        headers = {"Content-Type": kind, "x-ms-request-id": str(uuid.uuid4())}
        return RestResponse(request, status, content, headers)

    def _dispatch(self, method: str, path: str, body: Any, route: str) -> tuple[int, Any, dict[str, str]]:
        for failure in self._failures:
            if failure.method == method and failure.pattern.search(path):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure.status, _error(failure.code, failure.message), {}
        for verb, pattern, handler in self._routes:
            match = pattern.match(path)
            if verb == method and match:
                scope = match.groupdict()
                if scope.get("sub") not in (None, SUBSCRIPTION) or scope.get("rg") not in (None, RESOURCE_GROUP):
                    return 404, _error("ResourceGroupNotFound", f"Resource group '{scope.get('rg')}' not found"), {}
                if scope.get("ws") not in (None, WORKSPACE):
                    return 404, _error("ResourceNotFound", f"Workspace '{scope.get('ws')}' not found"), {}
                names = [g for g in match.groups()[len(scope) :]]
                try:
                    return handler(*names, body=body)
                except ServiceError as exc:
                    return exc.status, _error(exc.code, exc.message), {}
        self.unserved.append(route)
        raise AssertionError(f"the Azure ML test service has no route for {route}")

    # --- handlers: each returns (status, JSON body or None, headers) ---

    def _get_workspace(self, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        ws = self.workspaces.get(WORKSPACE)
        return (
            200,
            {
                "id": WORKSPACE_ID,
                "name": WORKSPACE,
                "type": f"{PROVIDER}/workspaces",
                "location": ws.location,
                "kind": "Default",
                "sku": {"name": "Basic", "tier": "Basic"},
                "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": TENANT},
                "tags": {},
                "properties": {
                    "friendlyName": WORKSPACE,
                    "workspaceId": "22222222-2222-2222-2222-222222222222",
                    "provisioningState": "Succeeded",
                    "discoveryUrl": f"https://{ws.location}.api.azureml.ms/discovery",
                    "mlFlowTrackingUri": f"azureml://{ws.location}.api.azureml.ms/mlflow/v1.0{WORKSPACE_ID}",
                    "storageAccount": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/stchatft",
                    "publicNetworkAccess": "Enabled",
                    "tenantId": TENANT,
                },
            },
            {},
        )

    def _async_headers(self, kind: str, key: Any) -> dict[str, str]:
        op = str(uuid.uuid4())
        self._operations[op] = (kind, key)
        base = f"https://{HOST}/subscriptions/{SUBSCRIPTION}/providers/{PROVIDER}/locations/{self.location()}"
        return {
            "Azure-AsyncOperation": f"{base}/mfeOperationsStatus/{op}?api-version=2022-02-01-preview",
            "Location": f"{base}/mfeOperationResults/{op}?api-version=2022-02-01-preview",
            "x-ms-async-operation-timeout": "PT2H",
        }

    def _list_endpoints(self, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        eps = self.online_endpoints
        return 200, {"value": [eps._resource(name, read=False) for name in list(eps._json)]}, {}

    def _get_endpoint(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        if name not in self.online_endpoints._json:
            raise not_found(f"online endpoint {name}")
        return 200, self.online_endpoints._resource(name, read=True), {}

    def _put_endpoint(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        status, doc = self.online_endpoints.put(name, body or {})
        return status, doc, self._async_headers("endpoint", name)

    def _patch_endpoint(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        """Online Endpoints - Update: PATCH with a PartialMinimalTrackedResourceWithIdentity body (`tags`,
        `identity`: azure/ai/ml/_restclient/arm_ml_service/models/_models.py), answered 202 Accepted with Location
        and x-ms-async-operation-timeout, the headers the generated `_update_initial` reads (it accepts 200 or 202).
        The body's `tags` replace the endpoint's tags; nothing else (traffic, auth, deployments) changes."""
        if name not in self.online_endpoints._json:
            raise not_found(f"online endpoint {name}")
        body = body or {}
        unexpected = set(body) - {"tags", "identity"}
        if unexpected:
            raise ServiceError(400, "UserError", f"properties not allowed in an endpoint PATCH: {sorted(unexpected)}")
        if "tags" in body:
            check_tags(body["tags"])
            self.online_endpoints.calls.append(("patch", name))
            self.online_endpoints._json[name]["tags"] = dict(body["tags"] or {})
        headers = self._async_headers("endpoint", name)
        headers.pop("Azure-AsyncOperation")
        return 202, None, headers

    def _delete_endpoint(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        try:
            existed = self.online_endpoints.begin_delete(name=name)
        except HttpResponseError as exc:  # a test's replacement saying what the service answers
            if isinstance(exc, ResourceNotFoundError) or exc.status_code == 404:
                raise not_found(f"online endpoint {name}") from exc
            raise ServiceError(exc.status_code or 500, exc.reason or "Conflict", exc.message) from exc
        if existed is False:
            # ARM's RPC: a DELETE of a resource that does not exist answers 204 No Content
            # (azure-resource-manager-rpc, "DELETE a resource"); the generated _delete_initial accepts 200/202/204.
            return 204, None, {}
        return 202, None, self._async_headers("delete", name)

    def _list_keys(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        if name not in self.online_endpoints._json:
            raise not_found(f"online endpoint {name}")
        key = self.online_endpoints.key
        return 200, {"primaryKey": key, "secondaryKey": key + "-2"}, {}

    def _list_deployments(self, endpoint: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        if endpoint not in self.online_endpoints._json:
            raise not_found(f"online endpoint {endpoint}")
        deps = self.online_deployments
        return 200, {"value": [deps._resource(k, read=False) for k in list(deps._json) if k[0] == endpoint]}, {}

    def _get_deployment(self, endpoint: str, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        if (endpoint, name) not in self.online_deployments._json:
            raise not_found(f"online deployment {endpoint}/{name}")
        return 200, self.online_deployments._resource((endpoint, name), read=True), {}

    def _put_deployment(self, endpoint: str, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        status, doc = self.online_deployments.put((endpoint, name), body or {})
        return status, doc, self._async_headers("deployment", (endpoint, name))

    def _list_model_versions(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, {"value": self.models.latest(name)}, {}

    def _get_model_version(self, name: str, version: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        doc = self.models._json.get((name, version))
        if doc is None:
            raise not_found(f"model {name}:{version}")
        return 200, doc, {}

    def _get_model_container(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        versions = [v for (n, v) in self.models._json if n == name]
        if not versions:
            raise not_found(f"model {name}")
        return (
            200,
            {
                "id": f"{WORKSPACE_ID}/models/{name}",
                "name": name,
                "type": f"{PROVIDER}/workspaces/models",
                "properties": {"latestVersion": versions[-1], "nextVersion": str(len(versions) + 1)},
            },
            {},
        )

    def _put_model_version(self, name: str, version: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        status, doc = self.models.put((name, version), body or {})
        return status, doc, {}

    def _get_job(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        if self.jobs is None:
            raise not_found(f"job {name}")
        try:
            job = self.jobs.get(name)
        except ResourceNotFoundError as exc:
            raise not_found(f"job {name}") from exc
        return 200, _job_document(job), {}

    def _cancel_job(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        """POST jobs/{name}/cancel: 202 Accepted with the async-operation headers (Jobs_Cancel in the
        Microsoft.MachineLearningServices REST spec: 200 or 202, else an ErrorResponse), and the job is Canceled
        at once (a real one is CancelRequested for a while). A job that already ended is refused with a 400
        UserError: the service's wording and code for it are not documented, and the SDK's generated
        `_cancel_initial` raises HttpResponseError for any status outside 200/202 and its error_map (401, 404,
        409, 304), which is what azure-ai-ml's own test helper `cancel_job` (sdk/ml/azure-ai-ml/tests/
        test_utilities/utils.py) catches when the job it cancels has finished."""
        if self.jobs is None:
            raise not_found(f"job {name}")
        try:
            job = self.jobs.get(name)
        except ResourceNotFoundError as exc:
            raise not_found(f"job {name}") from exc
        self.cancel_requests.append(name)
        status = str(job.status or "")
        if status in ("Completed", "Failed", "Canceled"):
            raise ServiceError(400, "UserError", f"Job {name} is in terminal state {status} and cannot be canceled")
        job._status = "Canceled"
        return 202, None, self._async_headers("job_cancel", name)

    def _get_compute(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        if name not in self.compute.clusters:
            raise not_found(f"compute {name}")
        return 200, self.compute.clusters[name], {}

    def _get_datastore(self, name: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        if name not in self.datastores:
            raise not_found(f"datastore {name}")
        account, container = self.datastores[name]
        return (
            200,
            {
                "id": f"{WORKSPACE_ID}/datastores/{name}",
                "name": name,
                "type": f"{PROVIDER}/workspaces/datastores",
                "properties": {
                    "datastoreType": "AzureBlob",
                    "accountName": account,
                    "containerName": container,
                    "endpoint": "core.windows.net",
                    "protocol": "https",
                    "serviceDataAccessAuthIdentity": "None",
                    "credentials": {"credentialsType": "None"},
                    "isDefault": False,
                    "tags": {},
                    "properties": {},
                },
                "systemData": _system_data(_now()),
            },
            {},
        )

    def _list_sizes(self, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, self.compute.size_list(), {}

    def _list_usages(self, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, self.compute.usage_list(self.location()), {}

    def _operation_state(self, op: str) -> str:
        if op not in self._operations:
            raise not_found(f"operation {op}")
        kind, key = self._operations[op]
        if kind == "endpoint":
            return self.online_endpoints._state(key, read=False) if key in self.online_endpoints._json else "Failed"
        if kind == "deployment":
            deps = self.online_deployments
            return deps._state("/".join(key), read=False) if key in deps._json else "Failed"
        return "Succeeded"  # deletes finish at once

    def _operation_status(self, op: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        state = self._operation_state(op)
        status = {"Creating": "InProgress", "Updating": "InProgress", "Deleting": "InProgress"}.get(state, state)
        return 200, {"id": op, "name": op, "status": status, "startTime": datetime.now(timezone.utc).isoformat()}, {}

    def _operation_result(self, op: str, *, body: Any) -> tuple[int, Any, dict[str, str]]:
        state = self._operation_state(op)
        return (202, None, {}) if state in ("Creating", "Updating", "Deleting") else (200, None, {})


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": [], "additionalInfo": []}}


def _json_body(request: Any) -> Any:
    content = request.content
    if content is None or content == b"" or content == "":
        return None
    if isinstance(content, (bytes, bytearray)):
        content = content.decode()
    try:
        return json.loads(content)
    except (TypeError, ValueError):
        return content


def ml_client(service: AmlRestService, credential: FakeCredential | None = None) -> Any:
    """The real MLClient for the workspace, served by `service`."""
    from azure.ai.ml import MLClient

    return MLClient(
        credential or FakeCredential(),
        SUBSCRIPTION,
        RESOURCE_GROUP,
        WORKSPACE,
        transport=service,
        enable_telemetry=False,
    )


class SubmittingJobs:
    """`client.jobs` for the flow tests: submitting a pipeline goes to the submission fake (the SDK would resolve
    the pipeline's components against the registry, which is not served), everything else -- `get` above all --
    is the SDK's JobOperations over the service. create_or_update answers with what the SDK then reads back,
    as the real one answers with the service's view of the created job."""

    def __init__(self, real: Any, submitted: Any) -> None:
        self._real, self._submitted = real, submitted

    def create_or_update(self, job: Any, **kwargs: Any) -> Any:
        self._submitted.create_or_update(job, **kwargs)
        return self._real.get(job.name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def workspace_client(service: AmlRestService, submitted_jobs: Any) -> Any:
    """The real MLClient over `service`, with pipeline submission going to `submitted_jobs` (which the service
    also renders for GET jobs/{name}). Its credential is `service.credential` (a FakeCredential tests may steer)."""
    service.jobs = submitted_jobs
    service.credential = FakeCredential()
    client = ml_client(service, service.credential)
    client._jobs = SubmittingJobs(client._jobs, submitted_jobs)  # MLClient.jobs returns self._jobs
    return client
