"""The `chatft dev` webhooks speak the delivery protocols a sender expects: the CloudEvents abuse-protection
handshake (OPTIONS), and a bounded time to send a request, so a slow sender never holds a handler.

CloudEvents HTTP 1.1 Web Hooks, section 4 (https://github.com/cloudevents/spec/blob/v1.0/http-webhook.md#4-abuse-protection):
the sender asks with `OPTIONS` and `WebHook-Request-Origin`; a target that allows delivery replies with
`WebHook-Allowed-Origin` (that origin, or `*`) and SHOULD add `WebHook-Allowed-Rate` (4.2.2) and an `Allow`
naming POST (4.2). Event Grid sends it for CloudEvents-schema subscriptions, and the Functions host's Event
Grid extension answers it (Azure/azure-sdk-for-net issue #47175, on
sdk/eventgrid/Microsoft.Azure.WebJobs.Extensions.EventGrid/src/TriggerBinding/HttpRequestProcessor.cs).
"""

from __future__ import annotations

import select
import socket
import time

import azure.functions as func
import pytest

from shared.local.host import BLOBS_WEBHOOK, LocalHost
from shared.local.http import JsonHandler

APP = func.FunctionApp()


@APP.function_name("record")
@APP.event_grid_trigger(arg_name="event")
def record(event: func.EventGridEvent) -> None:
    """Only here so the host serves its webhooks."""


@pytest.fixture
def host():
    running = LocalHost(APP, port=0, say=lambda line: None).start()
    yield running
    running.stop()


def exchange(port: int, raw: bytes, pause: float = 0.0, timeout: float = 10.0) -> tuple[int, dict[str, str], float]:
    """Send `raw` (a byte every `pause` seconds when given); the status, headers and seconds until the reply."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        for i in range(len(raw)) if pause else [None]:
            if select.select([s], [], [], 0)[0]:
                break  # the server answered (and gave up reading): stop sending, read the reply
            s.sendall(raw if i is None else raw[i : i + 1])
            if pause:
                time.sleep(pause)
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    elapsed = time.monotonic() - started
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
    return int(head[0].split()[1]), headers, elapsed


@pytest.mark.parametrize("path", ["/runtime/webhooks/EventGrid?functionName=record", f"{BLOBS_WEBHOOK}?functionName=x"])
def test_the_cloudevents_handshake_grants_the_asking_origin(host, path) -> None:
    raw = f"OPTIONS {path} HTTP/1.1\r\nHost: x\r\nWebHook-Request-Origin: eventgrid.azure.net\r\nConnection: close\r\n\r\n"
    status, headers, _ = exchange(host.port, raw.encode())
    assert status == 200
    assert headers["webhook-allowed-origin"] == "eventgrid.azure.net"
    assert headers["webhook-allowed-rate"] == "*"
    assert "POST" in headers["allow"]


def test_options_without_an_origin_is_not_a_handshake(host) -> None:
    raw = b"OPTIONS /runtime/webhooks/EventGrid?functionName=record HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, headers, _ = exchange(host.port, raw)
    assert status == 400 and "webhook-allowed-origin" not in headers


def test_a_request_sent_a_byte_at_a_time_is_cut_off_at_the_deadline(host, monkeypatch) -> None:
    """Was: each byte within the 30 s socket timeout kept the handler reading (1 byte per 20 s: 80 s and on)."""
    monkeypatch.setattr(JsonHandler, "read_deadline", 1.0, raising=False)
    body = b'[{"id": "1"}]'
    raw = (
        b"POST /runtime/webhooks/EventGrid?functionName=record HTTP/1.1\r\nHost: x\r\n"
        b"aeg-event-type: Notification\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    status, _, elapsed = exchange(host.port, raw, pause=0.05)  # the whole request would take 5 s
    assert status == 408
    assert elapsed < 3.0


def test_headers_trickled_past_the_deadline_get_408_too(host, monkeypatch) -> None:
    monkeypatch.setattr(JsonHandler, "read_deadline", 1.0, raising=False)
    raw = b"POST /runtime/webhooks/EventGrid?functionName=record HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    status, _, elapsed = exchange(host.port, raw, pause=0.02)
    assert status == 408 and elapsed < 3.0
