"""The local HTTP servers answer every request with JSON, whatever arrives: the `chatft dev` Event
Grid webhook (malformed bodies, bad Content-Length, oversize, unknown paths, failing functions,
fuzzed bodies) and the shared JsonHandler catch-all. Also: the runner's per-invocation line tells
what happened (a warning step and its report), from the invoking thread only."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import ThreadingHTTPServer

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.local.host import LocalHost
from shared.local.http import JsonHandler, JsonServer
from shared.logs import log_step

APP = func.FunctionApp()
SEEN: list[object] = []


@APP.function_name("record")
@APP.event_grid_trigger(arg_name="event")
def record(event: func.EventGridEvent) -> None:
    SEEN.append(event)


@APP.function_name("boom")
@APP.event_grid_trigger(arg_name="event")
def boom(event: func.EventGridEvent) -> None:
    raise RuntimeError("the function broke")


@APP.function_name("warns")
@APP.event_grid_trigger(arg_name="event")
def warns(event: func.EventGridEvent) -> None:
    """Another thread warns meanwhile (as a concurrent invocation would): that line is not ours."""
    other = threading.Thread(target=lambda: log_step("other.step", error="not mine", level=logging.WARNING))
    other.start()
    other.join()
    log_step("ingest.rejected", report="chat-prepared/x/abc/report.json", level=logging.WARNING)


EVENT = {
    "id": "1",
    "eventType": "Microsoft.MachineLearningServices.RunCompleted",
    "subject": "experiments/x/runs/y",
    "eventTime": "2026-01-01T00:00:00Z",
    "data": {"runId": "y", "runType": "azureml.PipelineRun"},
    "dataVersion": "2",
}


@pytest.fixture(scope="module")
def host():
    lines: list[str] = []
    running = LocalHost(APP, port=0, say=lines.append).start()
    running.lines = lines
    yield running
    running.stop()


def request(port: int, head: str, body: bytes = b"") -> tuple[int, object]:
    """One raw HTTP exchange; the reply must be a status line plus a JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode("latin-1") + b"\r\n" + body)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1."), data[:200]
    assert b"application/json" in headers.lower()
    return int(status_line.split()[1]), json.loads(payload)


def post(port: int, body: bytes, kind: str = "Notification", function: str = "record", length: str | None = None):
    head = (
        f"POST /runtime/webhooks/EventGrid?functionName={function} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"aeg-event-type: {kind}\r\nContent-Length: {len(body) if length is None else length}\r\n"
    )
    return request(port, head, body)


@pytest.mark.parametrize("body", [b"5", b'["x"]', b"[1]", b'{"data": 5}', b"[]", b'[{"data": {"validationCode": 7}}]'])
def test_a_malformed_validation_handshake_gets_400(host, body) -> None:
    status, reply = post(host.port, body, kind="SubscriptionValidation")
    assert status == 400 and reply["error"]
    if body == b'["x"]':
        assert "event 0 is not a JSON object" in reply["error"]


def test_each_event_must_be_an_object_and_the_reply_says_which(host) -> None:
    status, reply = post(host.port, json.dumps([EVENT, EVENT, 3]).encode())
    assert status == 400 and "event 2" in reply["error"]
    status, reply = post(host.port, json.dumps([EVENT, {**EVENT, "eventTime": "not a time"}]).encode())
    assert status == 400 and "event 1" in reply["error"]


def test_the_handshake_and_a_notification_still_work(host) -> None:
    body = json.dumps([{"id": "v", "data": {"validationCode": "abc"}}]).encode()
    assert post(host.port, body, kind="SubscriptionValidation") == (200, {"validationResponse": "abc"})
    before = len(SEEN)
    assert post(host.port, json.dumps([EVENT, EVENT]).encode()) == (200, {"invoked": 2})
    assert len(SEEN) == before + 2


@pytest.mark.parametrize(
    ("length", "status"),
    [("abc", 400), ("-1", 400), ("1e3", 400), (" ", 400), ("99999999999999999999999", 413), (str(2 << 20), 413)],
)
def test_bad_or_huge_content_length(host, length, status) -> None:
    got, reply = post(host.port, b"[]", length=length)
    assert got == status and reply["error"]


def test_a_body_over_1_mib_gets_413_even_while_the_client_is_still_sending(host) -> None:
    status, reply = post(host.port, b"[" + b" " * (2 << 20) + b"]")
    assert status == 413 and "limit" in reply["error"]


@pytest.mark.parametrize("body", [b"\xff\xfe\xfa", b"\x80abc", b"", b"[" * 100_000, b'{"a": 1'])
def test_bodies_that_are_not_json(host, body) -> None:
    status, reply = post(host.port, body)
    assert status == 400 and reply["error"]


def test_unknown_paths_functions_and_methods(host) -> None:
    assert post(host.port, b"[]", function="nope")[0] == 404
    assert request(host.port, "POST /elsewhere HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n")[0] == 404
    assert request(host.port, "GET / HTTP/1.1\r\nConnection: close\r\n")[0] == 404
    status, reply = request(host.port, "BREW /coffee HTTP/1.1\r\nConnection: close\r\n")
    assert status == 501 and reply["error"]
    assert post(host.port, b"[]", kind="")[0] == 400


def test_a_failing_function_gets_500_json(host) -> None:
    status, reply = post(host.port, json.dumps([EVENT]).encode(), function="boom")
    assert status == 500 and "boom" in reply["error"]
    assert any("→ boom failed: RuntimeError: the function broke" in line for line in host.lines)


def test_the_invocation_line_shows_the_warning_step_of_its_own_thread(host) -> None:
    assert post(host.port, json.dumps([EVENT]).encode(), function="warns")[0] == 200
    assert post(host.port, json.dumps([EVENT]).encode(), function="record")[0] == 200
    line = next(line for line in host.lines if "→ warns" in line)
    assert "→ warns ingest.rejected (report chat-prepared/x/abc/report.json)" in line
    assert " ok " not in line and "other.step" not in line
    assert any("→ record ok (" in line for line in host.lines)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=16,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
    kind=st.sampled_from(["SubscriptionValidation", "Notification", "", "Bogus"]),
    length=st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12),
)
def test_fuzzed_requests_always_get_a_json_reply(host, body, kind, length) -> None:
    status, reply = post(host.port, body, kind=kind, length=length)
    assert status in (200, 400, 413) and isinstance(reply, dict)
    assert status != 200 or kind in ("SubscriptionValidation", "Notification")


def test_the_catch_all_turns_any_handler_bug_into_500_json() -> None:
    class Broken(JsonHandler):
        def do_GET(self) -> None:
            raise KeyError("bug")

    server: ThreadingHTTPServer = JsonServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        status, reply = request(server.server_address[1], "GET / HTTP/1.1\r\nConnection: close\r\n")
        assert status == 500 and "KeyError" in reply["error"]
        status, reply = request(server.server_address[1], "garbage\r\n")
        assert status == 400 and reply["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_a_dead_host_loop_is_a_problem() -> None:
    host = LocalHost(APP, port=0, say=lambda line: None)
    assert host.problem() is None
    host._thread(lambda: (_ for _ in ()).throw(RuntimeError("storage gone")))
    host.join(time.monotonic() + 5)
    assert "stopped" in (host.problem() or "")
