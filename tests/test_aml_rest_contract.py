"""The Azure ML adapter (shared/azure/azureml/client.py) over the REAL azure-ai-ml MLClient.

Every MLClient operation the adapter calls runs the SDK's own code -- entity-to-REST conversion, the
generated request builders, the generated `error_map` / `map_error`, the entity deserialisation -- over an
azure-core transport that serves REST responses shaped like the service's (tests/aml_rest.py). So the
exceptions these tests see are the ones the SDK raises, not ones a fake chose. Each test names the SDK source
whose behaviour it pins; paths are under azure/ai/ml/ in azure-ai-ml 1.35, and `_operations.py` means the
generated azure/ai/ml/_restclient/arm_ml_service/operations/_operations.py.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import date, datetime, timezone

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.entities import AmlCompute, ManagedOnlineEndpoint, PipelineJob
from azure.ai.ml.exceptions import ValidationErrorType, ValidationException
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from shared.azure.azureml.client import AzureMLWorkspace
from shared.azure.azureml.errors import is_transient
from shared.domain.finetune.errors import PreflightError
from shared.settings import Settings
from tests.aml_rest import (
    HOST,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    WORKSPACE_ID,
    AmlRestService,
    FakeCredential,
    ml_client,
    studio_url,
)
from tests.fake_aml import PHI3_TAGS, FakeJobs, FakeRegistryClient, missing_by_label, model

LIVE_TAGS = {k: v for k, v in PHI3_TAGS.items() if not k.startswith("Finetune")}
EP = "chatft-ep-1"
EP_PATH = rf"/onlineEndpoints/{EP}$"
MODEL_ID = f"{WORKSPACE_ID}/models/Phi-3-mini-4k-instruct-ft/versions/1"


def settings(**env: str) -> Settings:
    base = {
        "AML_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AML_RESOURCE_GROUP": RESOURCE_GROUP,
        "AML_WORKSPACE": WORKSPACE,
        "EXPERIMENT_NAME": "chatft-tests",
    }
    return Settings.from_env({**base, **env})


@pytest.fixture
def service() -> AmlRestService:
    return AmlRestService(jobs=FakeJobs())


@pytest.fixture
def client(service: AmlRestService) -> MLClient:
    return ml_client(service)


@pytest.fixture
def adapter(service: AmlRestService, client: MLClient, caplog: pytest.LogCaptureFixture) -> AzureMLWorkspace:
    caplog.set_level(logging.INFO, logger="chatft")
    yield AzureMLWorkspace(
        settings(),
        workspace_client=client,
        registry_client=FakeRegistryClient([model(tags=LIVE_TAGS)]),
        today=lambda: date(2026, 11, 22),
    )
    assert not service.unserved
    # The private attributes shared/azure/azureml/lro.py uses exist in this SDK: it never fell back to the
    # public begin_* (which would start a poller thread).
    assert not [r for r in caplog.records if "azureml.lro_fallback" in r.getMessage()]


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def create_endpoint(adapter: AzureMLWorkspace, name: str = EP, **tags: str) -> None:
    adapter.begin_create_endpoint(name=name, description="chatft test", tags={"chatft_managed": "true", **tags})


# --- the client itself ---


def test_constructing_the_client_sends_nothing_and_starts_no_thread(service: AmlRestService) -> None:
    """MLClient.__init__ (_ml_client.py) only builds the generated clients for a workspace scope; the
    registry scope is different (`get_registry_client` calls the discovery service), hence the registry fake."""
    before = set(threading.enumerate())
    ml_client(service)
    assert service.requests == [] and new_threads(before) == []


def test_the_service_refuses_unknown_routes_and_hosts(service: AmlRestService, client: MLClient) -> None:
    with pytest.raises(AssertionError, match=r"no route for GET https://management.azure.com/.*/batchEndpoints/x"):
        client.batch_endpoints.get("x")
    from azure.core.rest import HttpRequest

    with pytest.raises(AssertionError, match=r"another host: GET https://example.com/x"):
        service.send(HttpRequest("GET", "https://example.com/x"))
    assert len(service.unserved) == 2
    service.unserved.clear()


# --- endpoints ---


def test_get_endpoint_on_404_is_none(service: AmlRestService, adapter: AzureMLWorkspace) -> None:
    """operations/_online_endpoint_operations.py `get` -> _operations.py OnlineEndpointsOperations.get:
    `error_map = {401: ClientAuthenticationError, 404: ResourceNotFoundError, 409: ResourceExistsError, ...}`
    then `map_error` raises ResourceNotFoundError, which the adapter turns into None."""
    assert adapter.get_endpoint(EP) is None
    [request] = service.calls_to("GET", EP_PATH)
    assert request.status == 404


def test_get_endpoint_on_403_raises_the_sdks_http_response_error(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """403 is not in the generated error_map: `raise HttpResponseError(response=response, model=error,
    error_format=ARMErrorFormat)` (_operations.py OnlineEndpointsOperations.get), status_code 403, the ARM code
    in `.error.code`; not transient."""
    service.fail_next("GET", EP_PATH, 403, "AuthorizationFailed", "The client does not have authorization")
    with pytest.raises(HttpResponseError) as caught:
        adapter.get_endpoint(EP)
    assert type(caught.value) is HttpResponseError and caught.value.status_code == 403
    assert caught.value.error.code == "AuthorizationFailed" and not is_transient(caught.value)


def test_a_503_is_retried_by_the_sdk_then_raised_as_transient(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """azure-core's RetryPolicy (in the generated client's pipeline, arm_ml_service/_client.py) retries 503
    three times; then the generated code raises HttpResponseError(503), which errors.is_transient keeps."""
    service.fail_next("GET", EP_PATH, 503, "ServiceUnavailable", times=10)
    with pytest.raises(HttpResponseError) as caught:
        adapter.get_endpoint(EP)
    assert caught.value.status_code == 503 and is_transient(caught.value)
    assert len(service.calls_to("GET", EP_PATH)) == 4


def test_begin_create_endpoint_sends_the_put_and_leaves_no_thread(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """shared/azure/azureml/lro.py sends what operations/_online_endpoint_operations.py `begin_create_or_update`
    sends (`endpoint._to_rest_online_endpoint(location)`), through the generated
    OnlineEndpointsOperations.begin_create_or_update with polling=False -> azure-core NoPolling, whose
    LROPoller starts no thread (azure/core/polling/_poller.py, LROPoller.__init__: a thread only if
    `not polling_method.finished()`). The service answered 201 + Azure-AsyncOperation, i.e. still Creating."""
    before = set(threading.enumerate())
    create_endpoint(adapter, chatft_upload="ab" * 32)
    assert new_threads(before) == []
    [put] = service.calls_to("PUT", EP_PATH)
    assert put.status == 201 and "Azure-AsyncOperation" in put.headers
    assert put.body["location"] == "eastus"  # from GET workspaces/{name}
    assert put.body["tags"] == {"chatft_managed": "true", "chatft_upload": "ab" * 32}
    assert put.body["properties"]["authMode"] == "Key" and put.body["properties"]["description"] == "chatft test"
    assert put.body["identity"] == {"type": "SystemAssigned"}
    assert service.online_endpoints.calls == [("create", EP)]
    info = adapter.get_endpoint(EP)
    assert info.provisioning_state == "Creating" and info.traffic == {} and info.tags["chatft_managed"] == "true"
    assert adapter.get_endpoint(EP).provisioning_state == "Succeeded"


def test_the_sdks_public_begin_create_or_update_leaves_a_poller_thread(
    service: AmlRestService, client: MLClient
) -> None:
    """Why lro.py exists (issue item 12): the public operations/_online_endpoint_operations.py
    `begin_create_or_update` calls the generated begin_create_or_update with the default polling=True ->
    ARMPolling, and LROPoller.__init__ starts a daemon thread polling Azure-AsyncOperation until the
    service says the operation ended. The thread is still alive when the call returns."""
    before = set(threading.enumerate())
    poller = client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name=EP, auth_mode="key", tags={"chatft_managed": "true"})
    )
    [thread] = new_threads(before)
    assert thread.name.startswith("LROPoller(") and not poller.done()
    service.online_endpoints.finish(EP)  # the service ends the operation; the poller sees it and stops
    assert poller.result(timeout=10).provisioning_state == "Succeeded"
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert service.calls_to("GET", r"/mfeOperationsStatus/"), "it polled the Azure-AsyncOperation URL"


def test_list_endpoints_gives_plain_string_states(service: AmlRestService, adapter: AzureMLWorkspace) -> None:
    """operations/_online_endpoint_operations.py `list` -> OnlineEndpoint._from_rest_object: the state is the
    generated str-Enum EndpointProvisioningState, whose str() is "EndpointProvisioningState.CREATING"; the
    adapter hands the flows the service's spelling."""
    create_endpoint(adapter)
    create_endpoint(adapter, "chatft-ep-2")
    infos = {i.name: i for i in adapter.list_endpoints()}
    assert set(infos) == {EP, "chatft-ep-2"}
    state = infos[EP].provisioning_state
    assert type(state) is str and state == "Creating" and f"{state}" == "Creating"
    assert infos[EP].created_at is not None and infos[EP].created_at.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - infos[EP].created_at).total_seconds()) < 60


def test_set_endpoint_traffic_puts_the_endpoint_back_with_the_traffic(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """The adapter reads the endpoint (operations/_online_endpoint_operations.py `get`, which also lists the
    deployments and puts 0 traffic on each), sets traffic and PUTs it as lro.py does; nothing else changes."""
    create_endpoint(adapter)
    adapter.begin_create_deployment(
        endpoint=EP, name="demo", model_id=MODEL_ID, instance_type="Standard_NC24ads_A100_v4"
    )
    before = set(threading.enumerate())
    adapter.set_endpoint_traffic(EP, {"demo": 100})
    assert new_threads(before) == []
    put = service.calls_to("PUT", EP_PATH)[-1]
    assert put.status == 200 and put.body["properties"]["traffic"] == {"demo": 100}
    assert put.body["tags"] == {"chatft_managed": "true"} and put.body["properties"]["authMode"] == "Key"
    assert service.online_endpoints.calls == [("create", EP), ("update", EP)]
    assert service.online_endpoints.endpoints[EP].traffic == {"demo": 100}


def test_set_endpoint_traffic_drops_zero_entries_as_the_public_method_does(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """The SDK's `get` puts a 0 in `traffic` for every deployment without traffic, and its public
    begin_create_or_update drops zero entries before the PUT (operations/_online_endpoint_operations.py,
    `_strip_zeroes_from_traffic`); lro.py does the same, so the body is the one the public method sends."""
    create_endpoint(adapter)
    for name in ("demo", "old"):
        adapter.begin_create_deployment(
            endpoint=EP, name=name, model_id=MODEL_ID, instance_type="Standard_NC24ads_A100_v4"
        )
    assert adapter.workspace.online_endpoints.get(EP).traffic == {"demo": 0, "old": 0}
    adapter.set_endpoint_traffic(EP, {"demo": 100, "old": 0})
    assert service.calls_to("PUT", EP_PATH)[-1].body["properties"]["traffic"] == {"demo": 100}
    assert adapter.get_endpoint(EP).traffic == {"demo": 100, "old": 0}  # the SDK's view again


def test_set_endpoint_traffic_on_a_missing_endpoint_raises_resource_not_found(adapter: AzureMLWorkspace) -> None:
    with pytest.raises(ResourceNotFoundError):
        adapter.set_endpoint_traffic(EP, {"demo": 100})


def test_endpoint_key_reads_the_auth_mode_then_lists_keys(service: AmlRestService, adapter: AzureMLWorkspace) -> None:
    """operations/_online_endpoint_operations.py `get_keys` -> `_get_online_credentials`: a GET for the auth
    mode, then POST listKeys (generated OnlineEndpointsOperations.list_keys) -> EndpointAuthKeys."""
    create_endpoint(adapter)
    service.online_endpoints.key = "k-primary"
    assert adapter.endpoint_key(EP) == "k-primary"
    [post] = service.calls_to("POST", rf"/onlineEndpoints/{EP}/listKeys$")
    assert post.status == 200


def test_begin_delete_endpoint(service: AmlRestService, adapter: AzureMLWorkspace) -> None:
    """lro.py `start_endpoint_delete` -> generated OnlineEndpointsOperations.begin_delete(polling=False):
    `_delete_initial` accepts 200/202/204 and maps 404 -> ResourceNotFoundError (which the adapter ignores)
    and 409 -> ResourceExistsError (which it raises: an operation is still running on the endpoint, so it is
    transient: MicrosoftDocs azure-ai-docs how-to-troubleshoot-online-endpoints.md, "HTTP status codes", 409
    "When an operation is already in progress, any new operation on that same online endpoint responds with a
    409 conflict error")."""
    create_endpoint(adapter)
    before = set(threading.enumerate())
    adapter.begin_delete_endpoint(EP)
    assert new_threads(before) == []
    assert service.calls_to("DELETE", EP_PATH)[-1].status == 202 and EP not in service.online_endpoints.endpoints
    adapter.begin_delete_endpoint(EP)  # gone: ARM answers 204, no error
    assert service.calls_to("DELETE", EP_PATH)[-1].status == 204
    service.fail_next("DELETE", EP_PATH, 404, "NotFound")
    adapter.begin_delete_endpoint(EP)  # a 404 is "already gone" too
    service.fail_next("DELETE", EP_PATH, 409, "Conflict", "An operation is in progress on the endpoint")
    with pytest.raises(ResourceExistsError) as caught:
        adapter.begin_delete_endpoint(EP)
    assert isinstance(caught.value, HttpResponseError) and caught.value.status_code == 409
    assert "An operation is in progress" in str(caught.value) and is_transient(caught.value)
    assert service.online_endpoints.calls == [("create", EP), ("delete", EP)]


BUSY = "An operation is in progress on the endpoint; wait until it completes"


def _raised(call) -> Exception:
    try:
        call()
    except Exception as exc:  # the SDK's own exception, whatever it is
        return exc
    raise AssertionError("nothing was raised")


def test_a_409_on_an_endpoint_or_deployment_write_is_waited_out(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """Every write the reconciler, the janitor and the endpoint-action commands make to an online endpoint or
    deployment (PUT, PATCH, DELETE) may be answered 409 while another operation runs on it
    (how-to-troubleshoot-online-endpoints.md, "HTTP status codes"). The generated operations raise
    ResourceExistsError (`error_map` in _operations.py), and errors.is_transient calls it transient, so the
    reconciler waits and retries until its deadline instead of cleaning the deployment up."""
    create_endpoint(adapter)
    service.online_endpoints.finish(EP)
    writes = {
        "PUT endpoint": ("PUT", EP_PATH, lambda: create_endpoint(adapter)),
        "PUT traffic": ("PUT", EP_PATH, lambda: adapter.set_endpoint_traffic(EP, {})),
        "PATCH tags": ("PATCH", EP_PATH, lambda: adapter.set_endpoint_tags(EP, {"chatft_managed": "true"})),
        "PUT deployment": (
            "PUT",
            rf"/onlineEndpoints/{EP}/deployments/demo$",
            lambda: adapter.begin_create_deployment(
                endpoint=EP, name="demo", model_id=MODEL_ID, instance_type="Standard_NC24ads_A100_v4"
            ),
        ),
        "DELETE endpoint": ("DELETE", EP_PATH, lambda: adapter.begin_delete_endpoint(EP)),
    }
    for what, (method, path, call) in writes.items():
        service.fail_next(method, path, 409, "Conflict", BUSY)
        raised = _raised(call)
        assert isinstance(raised, ResourceExistsError) and raised.status_code == 409, what
        assert is_transient(raised), what
        call()  # once the other operation is over, the same write goes through
    assert service.online_endpoints.calls[-1] == ("delete", EP)


def test_a_409_elsewhere_is_not_an_operation_in_progress(service: AmlRestService, adapter: AzureMLWorkspace) -> None:
    """A model version PUT answered 409 whose version then cannot be read is a real conflict, not a busy
    endpoint (errors.is_operation_in_progress reads the request the response answered)."""
    service.fail_next("PUT", r"/models/chatft-x/versions/1$", 409, "Conflict", "already exists")
    service.fail_next("GET", r"/models/chatft-x/versions/1$", 404, "NotFound", times=2)
    raised = _raised(
        lambda: adapter.register_model(job_name="j", name="chatft-x", version="1", description="d", tags={})
    )
    assert isinstance(raised, ResourceExistsError) and not is_transient(raised)


def test_a_credential_that_cannot_get_a_token_yet_is_transient(service: AmlRestService) -> None:
    """azure-identity's CredentialUnavailableError (a ClientAuthenticationError, azure/identity/_exceptions.py)
    is what ManagedIdentityCredential raises while the identity endpoint of a fresh instance does not answer;
    azure-core's BearerTokenCredentialPolicy lets it through unchanged, before any request is sent, so it has
    no response (azure/core/exceptions.py HttpResponseError: `response=None`). That is transient everywhere."""
    from azure.identity import CredentialUnavailableError

    credential = FakeCredential()
    credential.unavailable = 1
    adapter = AzureMLWorkspace(settings(), workspace_client=ml_client(service, credential))
    raised = _raised(lambda: adapter.get_endpoint(EP))
    assert isinstance(raised, CredentialUnavailableError) and raised.response is None
    assert is_transient(raised) and service.requests == []
    assert adapter.get_endpoint(EP) is None  # the identity answers now: the same call goes through


def test_a_real_401_stays_a_refusal(service: AmlRestService, adapter: AzureMLWorkspace) -> None:
    """A 401 from Azure is ClientAuthenticationError with its response (_operations.py `error_map`
    {401: ClientAuthenticationError}): a refusal a person must fix, not a retry."""
    from azure.core.exceptions import ClientAuthenticationError

    service.fail_next("GET", EP_PATH, 401, "InvalidAuthenticationToken", "The access token is invalid.")
    raised = _raised(lambda: adapter.get_endpoint(EP))
    assert isinstance(raised, ClientAuthenticationError) and raised.response is not None
    assert raised.status_code == 401 and not is_transient(raised)


# --- deployments ---


def test_begin_create_deployment_sends_the_put_and_leaves_no_thread(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """lro.py `start_deployment_put`: `deployment._to_rest_object(location)` (entities/_deployment/
    online_deployment.py) through the generated OnlineDeploymentsOperations.begin_create_or_update with
    polling=False. The public operations/_online_deployment_operations.py `begin_create_or_update` passes its own
    AzureMLPolling, so there is no public way to skip the thread. Durations go on the wire as ISO 8601."""
    create_endpoint(adapter)
    before = set(threading.enumerate())
    adapter.begin_create_deployment(
        endpoint=EP, name="demo", model_id=MODEL_ID, instance_type="Standard_NC24ads_A100_v4"
    )
    assert new_threads(before) == []
    [put] = service.calls_to("PUT", rf"/onlineEndpoints/{EP}/deployments/demo$")
    assert put.status == 201 and "Azure-AsyncOperation" in put.headers
    props = put.body["properties"]
    assert props["model"] == MODEL_ID and props["instanceType"] == "Standard_NC24ads_A100_v4"
    assert props["endpointComputeType"] == "Managed" and put.body["sku"]["capacity"] == 1
    assert props["livenessProbe"] == {"initialDelay": "PT10M"}  # 600 s
    assert props["requestSettings"] == {"requestTimeout": "PT1M30S"}  # 90000 ms
    assert put.body["location"] == "eastus"
    [deployment] = service.online_deployments.deployments.values()
    assert deployment.liveness_probe.initial_delay == 600 and deployment.request_settings.request_timeout_ms == 90000
    assert service.online_deployments.calls == [("create", EP, "demo")]


def test_get_deployment_progresses_and_404_is_none(service: AmlRestService, adapter: AzureMLWorkspace) -> None:
    """operations/_online_deployment_operations.py `get` -> generated OnlineDeploymentsOperations.get (404 ->
    ResourceNotFoundError); the state is the str-Enum DeploymentProvisioningState, handed over as a str."""
    assert adapter.get_deployment(EP, "demo") is None
    create_endpoint(adapter)
    service.online_deployments.fail_next.append(f"{EP}/demo")
    adapter.begin_create_deployment(
        endpoint=EP, name="demo", model_id=MODEL_ID, instance_type="Standard_NC24ads_A100_v4"
    )
    first, second = adapter.get_deployment(EP, "demo"), adapter.get_deployment(EP, "demo")
    assert (first.provisioning_state, second.provisioning_state) == ("Creating", "Failed")
    assert (
        type(second.provisioning_state) is str and f"provisioning {second.provisioning_state}" == "provisioning Failed"
    )


def test_a_deployment_to_a_missing_endpoint_raises_resource_not_found(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """The generated `_create_or_update_initial` maps the 404 (no such endpoint) to ResourceNotFoundError."""
    with pytest.raises(ResourceNotFoundError):
        adapter.begin_create_deployment(
            endpoint=EP, name="demo", model_id=MODEL_ID, instance_type="Standard_NC24ads_A100_v4"
        )
    assert service.online_deployments.calls == []


# --- model registration ---


def register(adapter: AzureMLWorkspace, job: str = "chatft-job-a1"):
    return adapter.register_model(
        job_name=job,
        name="Phi-3-mini-4k-instruct-ft",
        version="1",
        description="fine-tuned",
        tags={"chatft_job": job},
    )


def test_register_model_sends_the_job_output_path_as_an_mlflow_model(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """operations/_model_operations.py `create_or_update`: first `_get_model_properties` ->
    `_get_latest_version` -> azure/ai/ml/_utils/_asset_utils.py `_get_latest`, a versions list with
    $orderBy=createdtime desc&$top=1 (not a container GET); an empty list is a ValidationException it swallows;
    `_check_and_upload_path` leaves the azureml://jobs/... path alone; then the generated
    ModelVersionsOperations.create_or_update PUT."""
    registered = register(adapter)
    assert registered.created and registered.id == MODEL_ID and registered.version == "1"
    paths = [(r.method, r.path.split("/workspaces/ws-chatft")[1], r.status) for r in service.requests]
    assert paths == [
        ("GET", "/models/Phi-3-mini-4k-instruct-ft/versions/1", 404),  # the adapter: already registered?
        ("GET", "/models/Phi-3-mini-4k-instruct-ft/versions", 200),  # the SDK: latest version's properties
        ("PUT", "/models/Phi-3-mini-4k-instruct-ft/versions/1", 201),
    ]
    assert service.requests[1].query["$orderBy"] == "createdtime desc" and service.requests[1].query["$top"] == "1"
    props = service.requests[2].body["properties"]
    assert props["modelUri"] == "azureml://jobs/chatft-job-a1/outputs/trained_model"
    assert props["modelType"] == "mlflow_model" and props["tags"] == {"chatft_job": "chatft-job-a1"}
    [created] = service.models.created
    assert created.path == "azureml://jobs/chatft-job-a1/outputs/trained_model" and created.type == "mlflow_model"
    again = register(adapter)  # the adapter finds it by version first
    assert not again.created and again.id == MODEL_ID and len(service.calls_to("PUT", r"/models/")) == 1


def test_register_model_forbidden_is_the_sdks_http_response_error(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """ModelVersionsOperations.create_or_update's error_map has no 403: HttpResponseError(status_code=403),
    which the adapter re-raises (it only treats 409 as a lost race)."""
    service.fail_next("PUT", r"/models/.*/versions/1$", 403, "AuthorizationFailed", "no write permission")
    with pytest.raises(HttpResponseError) as caught:
        register(adapter)
    assert type(caught.value) is HttpResponseError and caught.value.status_code == 403
    assert service.models.created == []


def test_register_model_losing_a_409_race_returns_the_existing_version(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """409 -> ResourceExistsError from the generated error_map; the adapter then reads the version the other
    writer registered. (A repeated identical PUT is not a conflict for the service -- PUT of an existing
    version is how the SDK updates and archives one, _asset_utils.py `_archive_or_restore` -- so the 409 is
    injected here.)"""
    register(adapter, "chatft-job-other")
    service.fail_next("GET", r"/models/.*/versions/1$", 404, "NotFound")  # it was not there yet when we looked
    service.fail_next("PUT", r"/models/.*/versions/1$", 409, "Conflict", "version 1 already exists")
    registered = register(adapter)
    assert not registered.created and registered.id == MODEL_ID
    assert [r.status for r in service.calls_to("PUT", r"/models/")] == [201, 409]


# --- jobs ---


def test_job_info(service: AmlRestService, adapter: AzureMLWorkspace) -> None:
    """operations/_job_operations.py `get` -> `_get_job` (generated JobsOperations.get: 404 ->
    ResourceNotFoundError -> the adapter's None) -> Job._from_rest_object -> `_resolve_azureml_id`, which
    appends the token's tenant to the Studio URL (`_append_tid_to_studio_url`). The status is the str-Enum
    JobStatus; str(JobStatus.COMPLETED) is "JobStatus.COMPLETED", so the adapter hands over its value."""
    assert adapter.job_info("chatft-nope") is None
    job = PipelineJob(name="chatft-job-a1", display_name="phi3-ft")
    service.jobs.create_or_update(job, experiment_name="chatft", tags={"chatft_managed": "true", "Chatft_Job": "x"})
    info = adapter.job_info("chatft-job-a1")
    assert info.name == "chatft-job-a1" and info.status == "Running"
    assert info.tags == {"chatft_managed": "true", "chatft_job": "x"}
    assert info.studio_url == studio_url("chatft-job-a1")
    job._status = "Completed"
    assert adapter.job_info("chatft-job-a1").status == "Completed"


# --- compute, quota, datastore ---


def test_a_missing_compute_cluster_is_a_preflight_error_naming_the_setting(
    service: AmlRestService, client: MLClient
) -> None:
    """operations/_compute_operations.py `get` -> generated ComputeOperations.get: 404 -> ResourceNotFoundError,
    which the adapter turns into a PreflightError naming FINETUNE_COMPUTE."""
    aml = AzureMLWorkspace(
        settings(FINETUNE_COMPUTE="gpu-missing"),
        workspace_client=client,
        registry_client=FakeRegistryClient([model(tags=LIVE_TAGS)]),
        today=lambda: date(2026, 11, 22),
    )
    with pytest.raises(PreflightError) as caught:
        aml.preflight()
    assert caught.value.setting == "FINETUNE_COMPUTE" and "does not exist" in str(caught.value)
    service.compute.add_cluster(AmlCompute(name="gpu-missing", size="Standard_NC24ads_A100_v4", location="eastus"))
    assert aml.preflight().compute.gpus_per_node == 1
    service.compute.add_cluster(
        AmlCompute(name="gpu-missing", size="Standard_NC24ads_A100_v4", location="eastus"), provisioning_state="Failed"
    )
    with pytest.raises(PreflightError, match="provisioning state Failed"):
        aml.preflight()


def test_serverless_preflight_reads_gpus_from_the_vm_sizes_list(
    service: AmlRestService, adapter: AzureMLWorkspace
) -> None:
    """operations/_compute_operations.py `list_sizes`: the workspace's location, then the generated
    VirtualMachineSizesOperations.list."""
    plan = adapter.preflight().compute
    assert (plan.target, plan.vm_size, plan.gpus_per_node) == ("serverless", "Standard_NC24ads_A100_v4", 1)
    assert service.calls_to("GET", r"/locations/eastus/vmSizes$")


def test_quota_for_reads_the_shapes_the_sdk_really_returns(service: AmlRestService, adapter: AzureMLWorkspace) -> None:
    """entities/_compute/_vm_size.py and _usage.py `_from_rest_object` copy the REST model's `as_dict()` (wire
    names) into the entity: `vCPUs` and `currentValue` attributes, `name` a dict -- not the documented
    `v_cp_us`, `current_value` and UsageName. The adapter reads either."""
    size = next(s for s in adapter.workspace.compute.list_sizes() if s.name == "Standard_NC24ads_A100_v4")
    assert size.v_cp_us is None and size.vCPUs == 24  # what the SDK hands over
    [usage] = adapter.workspace.compute.list_usage()
    assert isinstance(usage.name, dict) and usage.current_value is None and usage.currentValue == 0
    service.compute.usages["standardNCADSA100v4Family"] = (90, 96)
    assert adapter.quota_for("Standard_NC24ads_A100_v4") == ("standardNCADSA100v4Family", 24, 6)
    assert adapter.quota_for("Standard_D12_v2") is None  # no usage reported for that family


def test_datastore_target(service: AmlRestService, adapter: AzureMLWorkspace) -> None:
    """operations/_datastore_operations.py `get` -> generated DatastoresOperations.get (404 ->
    ResourceNotFoundError -> None) -> Datastore._from_rest_object (an AzureBlobDatastore)."""
    assert adapter.datastore_target("chatft_prepared") is None
    service.datastores["chatft_prepared"] = ("stchatft", "prepared")
    account, container, credential = adapter.datastore_target("chatft_prepared")
    assert (account, container) == ("stchatft", "prepared") and credential


# --- the registry fake raises what the SDK raises ---


@pytest.mark.parametrize("status", [200, 404])
def test_a_model_missing_from_the_registry_is_a_preflight_error(client: MLClient, status: int) -> None:
    """`models.get(name, label="latest")` in a registry lists versions through _utils/_registry_utils.py
    `list_registry_assets`: an empty list -> ValidationException(RESOURCE_NOT_FOUND) (_asset_utils.py
    `_get_latest`); a 404 -> `response.raise_for_status()` -> a bare HttpResponseError(404). Both are "missing"."""
    exc = missing_by_label("No-Such-Model", "models", status=status)
    if status == 200:
        assert isinstance(exc, ValidationException) and exc.error_type == ValidationErrorType.RESOURCE_NOT_FOUND
    else:
        assert type(exc) is HttpResponseError and exc.status_code == 404
    registry = FakeRegistryClient([])
    registry.models.get = lambda name, version=None, label=None: (_ for _ in ()).throw(exc)
    aml = AzureMLWorkspace(settings(), workspace_client=client, registry_client=registry)
    with pytest.raises(PreflightError) as caught:
        aml.preflight()
    assert caught.value.setting == "FINETUNE_MODEL"


def test_every_request_went_to_arm_with_a_bearer_token(service: AmlRestService) -> None:
    credential = FakeCredential()
    client = ml_client(service, credential)
    client.workspaces.get(WORKSPACE)
    [request] = service.requests
    assert request.path == WORKSPACE_ID and HOST == "management.azure.com"
    assert credential.scopes == [("https://management.azure.com/.default",)]
    assert json.loads(json.dumps(request.query))["api-version"]
