"""Lifecycle events (issue 13): one CloudEvent per stage of an upload, published to an Event Grid topic.

The REAL `EventGridPublisherClient` sends them, over an azure-core transport that records each HTTP
request (the `topic` fixture): azure-core builds its default transport in `PipelineClient._build_pipeline`
(azure/core/_pipeline_client.py: `from .pipeline.transport._requests_basic import RequestsTransport`), and
the basic-topic client does not pass `transport=` on (azure/eventgrid/_patch.py: `LegacyEventGridPublisherClient(
endpoint, credential, api_version=...)`), so the test replaces that class. What is asserted is the body as the SDK
serialises it: a CloudEvents batch (azure/eventgrid/_legacy/_publisher_client.py `send`,
_legacy/_helpers.py `_cloud_event_to_generated`, `_build_request`).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._http_response_impl import HttpResponseImpl

import function_app
import shared.entry.app_wiring
from shared.domain import lifecycle_events as le
from shared.domain.ledger import STUDIO_URL, LedgerEntry, Status, UploadKey
from shared.flows import endpoint_actions
from tests.aml_rest import FakeCredential
from tests.deploy_flow import SHA, completed, is_live, report, row, run_until, scoring, send, status, submit, tick
from tests.hosting import invoke_blob_trigger
from tests.transport import InMemoryTransport

ENDPOINT = "https://chatft-events.westus-1.eventgrid.azure.net/api/events"


class _Response(HttpResponseImpl):
    def __init__(self, request: Any, status: int, content: bytes) -> None:
        super().__init__(
            request=request,
            internal_response=None,
            status_code=status,
            reason="OK" if status == 200 else "Error",
            content_type="application/json",
            headers={"Content-Type": "application/json"},
            stream_download_generator=None,
        )
        self._content = content

    def read(self) -> bytes:
        return self._content


class Topic(InMemoryTransport):
    """An Event Grid custom topic: records every request; `fail_next` answers the next ones with an error."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[int] = []
        self._lock = threading.Lock()

    def send(self, request: Any, **kwargs: Any) -> _Response:
        url = urlsplit(request.url)
        with self._lock:
            status = self.fail_next.pop(0) if self.fail_next else 200
            self.requests.append(
                {
                    "url": f"{url.scheme}://{url.netloc}{url.path}",
                    "query": dict(parse_qsl(url.query)),
                    "headers": dict(request.headers),
                    "body": json.loads(request.data),
                    "status": status,
                    "kwargs": kwargs,
                }
            )
        error = b'{"error": {"code": "Unavailable", "message": "injected"}}'
        # a basic topic answers 200 with no body; a namespace topic's publish answers a PublishResult, `{}`
        ok = b"{}" if url.path.endswith(":publish") else b""
        return _Response(request, status, ok if status == 200 else error)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events the topic accepted, in order."""
        return [e for r in self.requests if r["status"] == 200 for e in r["body"]]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


class Routed(HttpTransport):
    """The transport every azure-core client now gets: the topic's host goes to `topic`, the rest (Azurite)
    to the real RequestsTransport."""

    def __init__(self, topic: Topic, real: HttpTransport) -> None:
        self.topic, self.real = topic, real

    def open(self) -> None:
        self.real.open()

    def close(self) -> None:
        self.real.close()

    def __enter__(self) -> Routed:
        self.real.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self.real.__exit__(*args)

    def sleep(self, duration: float) -> None:
        self.real.sleep(duration)

    def send(self, request: Any, **kwargs: Any) -> Any:
        if urlsplit(request.url).netloc.endswith(".eventgrid.azure.net"):  # any topic or namespace
            return self.topic.send(request, **kwargs)
        return self.real.send(request, **kwargs)


def serve_topic(monkeypatch) -> Topic:
    import azure.core.pipeline.transport._requests_basic as requests_basic

    service, real = Topic(), requests_basic.RequestsTransport
    monkeypatch.setattr(requests_basic, "RequestsTransport", lambda **kwargs: Routed(service, real(**kwargs)))
    return service


@pytest.fixture
def topic(aml, monkeypatch):
    service = serve_topic(monkeypatch)
    credential = FakeCredential()
    monkeypatch.setattr("shared.azure.identity.credential", lambda *a, **k: credential)
    monkeypatch.setenv("EVENTS_TOPIC_ENDPOINT", ENDPOINT)
    for cached in (
        shared.entry.app_wiring.settings,
        shared.entry.app_wiring.deploy_context,
        shared.entry.app_wiring.janitor_context,
        shared.entry.app_wiring.event_publisher,
    ):
        cached.cache_clear()
    service.credential = credential
    return service


@pytest.fixture
def flow(aml, topic, blob_service, storage_env):
    workspace, _ = aml
    with scoring(workspace):
        job, tags = submit(blob_service, storage_env, workspace)
        yield workspace, topic, job, tags


def action_ctx() -> endpoint_actions.ActionContext:
    """What `chatft retire` / `redeploy` build (shared/entry/cli/commands/endpoint_actions.py `context`)."""
    from shared.entry.cli.commands.endpoint_actions import context

    return context()


# --- the whole loop, on the wire ---


def test_the_full_loop_publishes_each_stage_once_as_cloudevents(flow, blob_service, storage_env) -> None:
    _, topic, job, tags = flow
    assert topic.types() == [le.SUBMITTED]  # published by the ingest that submitted it
    send(completed(job, tags))
    send(completed(job, tags))  # Event Grid delivers again
    assert topic.types() == [le.SUBMITTED]  # a delivery publishes nothing: Event Grid waits only 30 s for it
    tick()  # the reconciler's tick sends what the delivery earned
    assert topic.types() == [le.SUBMITTED, le.REGISTERED]
    run_until(is_live)
    tick()
    tick()
    assert topic.types() == [le.SUBMITTED, le.REGISTERED, le.LIVE]
    endpoint_actions.retire(action_ctx(), SHA[:12], reason="done with it")
    assert topic.types()[-1] == le.RETIRED  # the command announces it at once, not on the next tick
    endpoint_actions.redeploy(action_ctx(), SHA[:12])
    assert topic.types()[-1] == le.REDEPLOYED
    run_until(is_live)
    tick()
    assert topic.types() == [le.SUBMITTED, le.REGISTERED, le.LIVE, le.RETIRED, le.REDEPLOYED, le.LIVE]
    ids = [e["id"] for e in topic.events]
    assert len(set(ids)) == len(ids)

    # the wire format: what EventGridPublisherClient sends to a basic custom topic
    first = topic.requests[0]
    assert first["url"] == ENDPOINT and first["query"] == {"api-version": "2018-01-01"}
    assert first["headers"]["Content-Type"] == "application/cloudevents-batch+json; charset=utf-8"
    assert first["headers"]["Authorization"].startswith("Bearer ")
    assert ("https://eventgrid.azure.net/.default",) in topic.credential.scopes
    assert first["kwargs"]["read_timeout"] <= 10 and first["kwargs"]["connection_timeout"] <= 5
    entry = row()
    submitted, registered, live = topic.events[:3]
    assert submitted["specversion"] == "1.0"
    assert submitted["source"] == "/chatft/ws-chatft"
    assert submitted["subject"] == f"chats/{SHA}"
    assert submitted["chatftcid"] == entry.cid and submitted["data"]["cid"] == entry.cid
    assert submitted["datacontenttype"] == "application/json"
    assert submitted["data"]["job_name"] == job and submitted["data"]["attempt"] == 1
    studio = report(blob_service, storage_env)["submission"][
        "studio_url"
    ]  # what the SDK's Job.studio_url gave at submission
    assert studio.startswith("https://ml.azure.com/runs/") and f"/runs/{job}?" in studio
    assert all(e["data"]["studio_url"] == studio for e in topic.events if e["data"].get("job_name"))
    assert submitted["data"]["report"].endswith(f"chats/{SHA[:16]}/report.md")
    assert submitted["id"] == le.event_id(f"chats/{SHA}", le.SUBMITTED, "1")
    datetime.fromisoformat(submitted["time"].replace("Z", "+00:00"))
    assert registered["data"]["model_id"] == entry.deploy["model_id"]
    assert live["data"]["scoring_uri"] and live["data"]["endpoint"] == entry.deploy["endpoint"]
    retired, redeployed = topic.events[3:5]
    assert "done with it" in retired["data"]["reason"]
    assert redeployed["data"]["by"] == "chatft redeploy"
    assert entry.extra[le.PUBLISHED].split() == [e.id for e in le.earned(entry)]


def test_the_local_workspace_names_the_source() -> None:
    assert (
        le.event_source("/subscriptions/x/resourceGroups/y/providers/P/workspaces/chatft-local")
        == "/chatft/chatft-local"
    )


# --- failure paths ---


def test_a_rejected_upload_is_published_from_ingest_with_a_stable_id(aml, topic, blob_service, storage_env) -> None:
    client = blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "bad.jsonl")
    client.upload_blob(b"not json\n" * 20, overwrite=True)
    invoke_blob_trigger(function_app.app, "ingest_upload", "bad.jsonl")
    invoke_blob_trigger(function_app.app, "ingest_upload", "bad.jsonl")  # the same upload, triggered again
    assert topic.types() == [le.REJECTED, le.REJECTED]
    first, again = topic.events
    assert first["id"] == again["id"]
    assert first["subject"].startswith("bad/") and first["data"]["errors"]
    assert first["data"]["report"].endswith("report.md") and first["chatftcid"]
    client.upload_blob(b"still not json\n" * 20, overwrite=True)
    invoke_blob_trigger(function_app.app, "ingest_upload", "bad.jsonl")
    assert topic.events[-1]["id"] != first["id"]


@pytest.mark.parametrize(("state", "kind"), [("Failed", le.JOB_FAILED), ("Canceled", le.JOB_CANCELED)])
def test_a_failed_or_canceled_job(flow, state, kind) -> None:
    _, topic, job, tags = flow
    entry = row()
    studio = entry.extra.pop(STUDIO_URL)  # a row submitted before the link was kept: it is filled in at the end
    assert shared.entry.app_wiring.ledger().save(entry)
    send(status(job, tags, state))
    send(status(job, tags, state))
    tick()
    assert topic.types() == [le.SUBMITTED, kind]
    data = topic.events[-1]["data"]
    assert data["job_name"] == job and state.lower() in data["error"]
    assert data["studio_url"] == studio and row().extra[STUDIO_URL] == studio
    if kind == le.JOB_FAILED:
        assert data["phase"] == "training"


def test_a_failed_deployment(flow) -> None:
    from shared.domain.deploy.names import endpoint_name
    from tests.aml_rest import WORKSPACE_ID

    workspace, topic, job, tags = flow
    workspace.online_deployments.fail_next.append(f"{endpoint_name('chats', job, WORKSPACE_ID)}/demo")
    send(completed(job, tags))
    run_until(lambda: row().status is Status.DEPLOY_FAILED)
    tick()
    assert topic.types() == [le.SUBMITTED, le.REGISTERED, le.DEPLOY_FAILED]
    assert "provisioning Failed" in topic.events[-1]["data"]["error"]


def test_a_redeploy_after_a_failed_deployment(flow) -> None:
    workspace, topic, job, tags = flow
    from shared.domain.deploy.names import endpoint_name
    from tests.aml_rest import WORKSPACE_ID

    workspace.online_deployments.fail_next.append(f"{endpoint_name('chats', job, WORKSPACE_ID)}/demo")
    send(completed(job, tags))
    run_until(lambda: row().status is Status.DEPLOY_FAILED)
    endpoint_actions.redeploy(action_ctx(), SHA[:12])
    run_until(is_live)
    tick()
    assert topic.types() == [le.SUBMITTED, le.REGISTERED, le.DEPLOY_FAILED, le.REDEPLOYED, le.LIVE]
    assert topic.events[3]["data"]["after"] == "deploy_failed"


@pytest.mark.parametrize("refusal", [503, 403])
def test_a_publish_failure_never_fails_the_step_and_is_retried_next_tick(flow, refusal) -> None:
    _, topic, job, tags = flow
    assert send(completed(job, tags)) is None  # the handler returned normally
    assert row().status is Status.REGISTERED and len(topic.requests) == 1  # the delivery does not publish
    topic.fail_next.extend([refusal] * 10)  # every publish of the first tick is refused
    tick()  # ... and the tick still moves the deployment on
    assert topic.types() == [le.SUBMITTED] and row().status is not Status.REGISTERED
    assert le.REGISTERED in [e["type"] for e in topic.requests[1]["body"]]  # it was tried
    assert all(r["status"] == refusal for r in topic.requests[1:])
    topic.fail_next.clear()
    run_until(is_live)
    tick()
    assert topic.types() == [le.SUBMITTED, le.REGISTERED, le.LIVE]


def test_a_command_whose_caller_may_not_publish_still_succeeds_and_the_app_announces_it(flow) -> None:
    _, topic, job, tags = flow
    send(completed(job, tags))
    run_until(is_live)
    tick()
    topic.fail_next.append(403)  # the person running chatft retire has no EventGrid Data Sender role
    outcome = endpoint_actions.retire(action_ctx(), SHA[:12])
    assert outcome.ok and row().status is Status.RETIRED
    assert "published as you" in outcome.message and topic.requests[-1]["status"] == 403
    assert le.RETIRED not in topic.types()
    tick()
    assert topic.types()[-1] == le.RETIRED and topic.types().count(le.RETIRED) == 1


def test_a_namespace_topic_gets_the_same_events_on_its_publish_operation(
    aml, blob_service, storage_env, monkeypatch
) -> None:
    """EVENTS_NAMESPACE_TOPIC set: EventGridPublisherClient(..., namespace_topic=) POSTs the CloudEvents batch to
    /topics/<topic>:publish?api-version=2024-06-01 (azure/eventgrid/_operations/_operations.py)."""
    topic = serve_topic(monkeypatch)
    credential = FakeCredential()
    monkeypatch.setattr("shared.azure.identity.credential", lambda *a, **k: credential)
    monkeypatch.setenv("EVENTS_TOPIC_ENDPOINT", "https://chatft-ns.westus-1.eventgrid.azure.net")
    monkeypatch.setenv("EVENTS_NAMESPACE_TOPIC", "chatft-events")
    for cached in (
        shared.entry.app_wiring.settings,
        shared.entry.app_wiring.deploy_context,
        shared.entry.app_wiring.event_publisher,
    ):
        cached.cache_clear()
    workspace, _ = aml
    job, tags = submit(blob_service, storage_env, workspace)
    send(completed(job, tags))
    tick()
    first = topic.requests[0]
    assert first["url"] == "https://chatft-ns.westus-1.eventgrid.azure.net/topics/chatft-events:publish"
    assert first["query"] == {"api-version": "2024-06-01"}
    assert first["headers"]["content-type"].startswith("application/cloudevents-batch+json")
    assert first["headers"]["Authorization"].startswith("Bearer ")
    assert ("https://eventgrid.azure.net/.default",) in credential.scopes
    assert topic.types() == [le.SUBMITTED, le.REGISTERED]
    assert topic.events[0]["chatftcid"] == row().cid and topic.events[0]["source"] == "/chatft/ws-chatft"


def test_nothing_is_published_without_a_topic(aml, blob_service, storage_env, monkeypatch) -> None:
    service = serve_topic(monkeypatch)
    workspace, _ = aml
    assert shared.entry.app_wiring.event_publisher() is None
    job, tags = submit(blob_service, storage_env, workspace)
    send(completed(job, tags))
    tick()
    assert service.requests == [] and le.PUBLISHED not in row().extra


# --- the pure rules ---


def _entry(status: Status, **fields: Any) -> LedgerEntry:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return LedgerEntry(
        UploadKey("chats", "ab" * 32), status, 1, "c", now, "etag", "chat-uploads/chats.jsonl", "cid-1", **fields
    )


def test_a_submission_failure_is_a_job_failed_event_without_a_job() -> None:
    entry = _entry(Status.FAILED, error="PreflightError: no quota")
    [event] = le.earned(entry)
    assert event.type == le.JOB_FAILED and event.data["phase"] == "submission" and event.data["job_name"] is None


def test_a_janitor_retirement_carries_the_reason_and_the_measured_idle_time() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    deploy = {
        "model_id": "azureml:m:1",
        "model_name": "m",
        "model_version": "1",
        "endpoint": "ep",
        "started_at": now.isoformat(),
        "live_at": (now + timedelta(minutes=20)).isoformat(),
        "retired": {
            "at": "2026-01-02T00:00:00+00:00",
            "reason": "idle",
            "idle_minutes_measured": 120,
            "age_minutes": 600,
        },
    }
    entry = _entry(Status.RETIRED, job_name="job-1", deploy=deploy)
    types = [e.type for e in le.earned(entry)]
    assert types == [le.SUBMITTED, le.REGISTERED, le.LIVE, le.RETIRED]
    retired = le.earned(entry)[-1].data
    assert retired["reason"] == "idle" and retired["idle_minutes_measured"] == 120
    le.record(entry, [e.id for e in le.earned(entry)[:2]])
    assert [e.type for e in le.due(entry)] == [le.LIVE, le.RETIRED]


def test_two_workers_with_the_same_due_events_send_them_once(flow) -> None:
    from shared.flows.lifecycle_events import publish_due

    _, topic, job, tags = flow
    publisher = shared.entry.app_wiring.event_publisher()
    send(completed(job, tags))  # registered: its event is due on both workers' copies below
    ledger = shared.entry.app_wiring.ledger()
    first, second = ledger.get(row().key), ledger.get(row().key)
    assert publish_due(first, ledger, publisher) is True
    assert publish_due(second, ledger, publisher) is None  # its read is stale: it sends nothing
    assert publish_due(ledger.get(row().key), ledger, publisher) is None  # nothing due any more
    assert topic.types() == [le.SUBMITTED, le.REGISTERED]
