"""The base the local HTTP servers (scoring, host webhook) share: quiet, and every request gets a
JSON reply, whatever it sends (bad Content-Length, unknown method, a handler bug: 4xx/5xx JSON,
never a dropped connection)."""

from __future__ import annotations

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


class JsonHandler(BaseHTTPRequestHandler):
    timeout = 30  # a client that stops sending mid-body gets 408, not a handler thread forever
    _replied = False
    _body_read = True
    """False once a body was refused unread: the reply then says Connection: close."""

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
        try:
            super().handle_one_request()
        except HttpError as exc:
            self._fail(exc.status, str(exc))
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
        except TimeoutError as exc:
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
