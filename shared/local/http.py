"""The base the local HTTP servers (scoring, host webhook) share: quiet, and every request gets a
JSON reply, whatever it sends (bad Content-Length, unknown method, a handler bug: 4xx/5xx JSON,
never a dropped connection); a request must arrive within a deadline, and the CloudEvents webhook
handshake (OPTIONS) is answered."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("chatft.http")


class HttpError(Exception):
    """Reply `status` with {"error": message}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class JsonServer(ThreadingHTTPServer):
    """Daemon request threads (a stuck request never blocks shutdown); errors go to the log, not stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("request from %s failed", client_address, exc_info=True)


class RequestTooSlow(Exception):
    """A request began to arrive but was not all there by its deadline (not a TimeoutError: the stdlib
    swallows those without a reply, right for an idle keep-alive connection, wrong for a slow sender)."""


class _DeadlineReader(io.RawIOBase):
    """The request socket, read with an overall deadline: a client sending a byte just within each socket
    timeout is cut off when its request has taken the deadline in all, not served for as long as it trickles."""

    def __init__(self, sock: socket.socket, idle: float) -> None:
        self._sock = sock
        self._idle = idle
        self.deadline: float | None = None
        """time.monotonic() by which the request must have arrived; None: only the idle timeout."""
        self.received = 0
        """Bytes of the current request so far (none: an idle connection, closed quietly)."""

    def start(self, seconds: float) -> None:
        self.deadline, self.received = time.monotonic() + seconds, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._idle if self.deadline is None else self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError("the request deadline passed")
            self._sock.settimeout(min(self._idle, left))
            n = self._sock.recv_into(buffer)
        except TimeoutError:
            if self.received and left <= self._idle:
                raise RequestTooSlow from None
            raise
        finally:
            self._sock.settimeout(self._idle)  # replies are written with the idle timeout, whatever is left
        self.received += n
        return n


class JsonHandler(BaseHTTPRequestHandler):
    timeout = 30  # a client that stops sending mid-body gets 408, not a handler thread forever
    read_deadline = 30.0
    """Seconds a whole request (line, headers, body) may take to arrive, however it trickles in."""
    _replied = False
    _body_read = True
    """False once a body was refused unread: the reply then says Connection: close."""

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the stdlib's reader: replaced by one that keeps the request deadline
        self._reader = _DeadlineReader(self.connection, self.timeout)
        self.rfile = io.BufferedReader(self._reader)

    def do_OPTIONS(self) -> None:
        """The CloudEvents webhook abuse-protection handshake (http-webhook.md section 4): a sender asks with
        WebHook-Request-Origin; we allow that origin, at any rate, to POST. Event Grid sends it before
        delivering CloudEvents to a webhook, and the Functions host answers it."""
        origin = (self.headers.get("WebHook-Request-Origin") or "").strip()
        if not origin:
            raise HttpError(400, "OPTIONS here is the CloudEvents webhook handshake: send WebHook-Request-Origin")
        self._reply(
            200, None, {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST, OPTIONS"}
        )

    def log_message(self, *args: Any) -> None:
        """Silent: the servers print their own one line per request where it matters."""

    def send_response(self, code: int, message: str | None = None) -> None:
        self._replied = True
        super().send_response(code, message)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own errors (bad request line, unknown method, ...) as JSON too."""
        self.close_connection = True
        self._reply(code, {"error": message or self.responses.get(code, ("error",))[0]})

    def handle_one_request(self) -> None:
        """The catch-all: whatever a handler raises, the client gets a JSON reply (500 unless HttpError)."""
        self._replied, self._body_read = False, True
        self._reader.start(self.read_deadline)
        self.requestline, self.request_version = "", "HTTP/1.0"  # until parsed (a reply may come before)
        try:
            super().handle_one_request()
        except HttpError as exc:
            self._fail(exc.status, str(exc))
        except RequestTooSlow:
            self._body_read = False
            self._fail(408, f"the request did not arrive within {self.read_deadline:g} s")
        except ConnectionError:  # the client went away: nobody to answer
            self.close_connection = True
        except Exception as exc:
            log.exception("%s %s failed", self.command, self.path)
            self._fail(500, f"internal error: {type(exc).__name__}: {exc}")

    def _fail(self, status: int, message: str) -> None:
        self.close_connection = True
        if self._replied:
            return
        try:
            self._reply(status, {"error": message})
        except OSError:
            return

    def read_body(self, limit: int) -> bytes:
        """The body, by a valid Content-Length of at most `limit` bytes; HttpError(400/411/413) otherwise."""
        raw = self.headers.get("Content-Length")
        if raw is None:
            if self.headers.get("Transfer-Encoding"):
                self._body_read = False
                raise HttpError(411, "send the body with a Content-Length")
            return b""
        raw = raw.strip()
        if not (raw.isascii() and raw.isdigit()):
            self._body_read = False
            raise HttpError(400, f"Content-Length must be a non-negative integer, not {raw[:40]!r}")
        length = int(raw)
        if length > limit:
            self._body_read = False
            raise HttpError(413, f"body of {length} bytes is over the {limit}-byte limit")
        try:
            body = self.rfile.read(length)
        except (TimeoutError, RequestTooSlow) as exc:
            self._body_read = False
            raise HttpError(408, f"timed out reading the body ({length} bytes announced)") from exc
        if len(body) < length:
            raise HttpError(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _reply(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        if self.request_version == "HTTP/0.9":  # a garbled request line: still answer with a status line
            self.request_version = "HTTP/1.0"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection or not self._body_read:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def finish(self) -> None:
        """Close gracefully: send FIN, then drain what the client still sends for a moment. Closing with
        unread data (a refused or over-long body) resets the connection, and the client could lose our reply."""
        super().finish()
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.2)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and self.connection.recv(1 << 16):
                pass
        except OSError:
            return
