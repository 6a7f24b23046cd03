"""One local development session: settings, Azurite, the host runner and the local backend,
started together and stopped together (nothing is left running afterwards)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import shared.runtime
from shared.local.azurite import Azurite, start_or_reuse
from shared.local.host import LocalHost, Say, load_local_settings

WEBHOOK = "http://127.0.0.1:{port}/runtime/webhooks/EventGrid?functionName=job_events"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevSession:
    def __init__(
        self,
        *,
        overrides: Mapping[str, str] | None = None,
        port: int = 7071,
        azurite_location: Path | None = None,
        poll_seconds: float = 1.0,
        say: Say = print,
        log_file: Path | None = None,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.port = port or free_port()
        self.azurite_location = azurite_location
        self.poll_seconds = poll_seconds
        self.say = say
        self.log_file = log_file
        self.azurite: Azurite | None = None
        self.host: LocalHost | None = None
        self._saved_env: dict[str, str | None] = {}
        self._log_handler: logging.Handler | None = None

    def __enter__(self) -> DevSession:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        values = load_local_settings(overrides=self.overrides)
        if self.azurite_location is not None:
            self.azurite_location.mkdir(parents=True, exist_ok=True)
        self.azurite = start_or_reuse(location=self.azurite_location)
        for name in ("AzureWebJobsStorage", "CHATFT_STORAGE"):
            if values.get(name, "").startswith("UseDevelopmentStorage") or name not in values:
                values[name] = self.azurite.connection_string
        if "LOCAL_EVENT_WEBHOOK" not in self.overrides:  # the events must reach this session's webhook
            values["LOCAL_EVENT_WEBHOOK"] = WEBHOOK.format(port=self.port)
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handler = logging.FileHandler(self.log_file)
            self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
            logging.getLogger().addHandler(self._log_handler)
            logging.getLogger("chatft").setLevel(logging.INFO)
        shared.runtime.reset()
        import function_app

        workspace = shared.runtime.workspace()
        if workspace is not None and hasattr(workspace, "restart_stopped_endpoints"):
            for name in workspace.restart_stopped_endpoints():
                self.say(f"local  restarted endpoint {name}")
        self.host = LocalHost(function_app.app, port=self.port, poll_seconds=self.poll_seconds, say=self.say).start()

    @property
    def workspace(self) -> Any:
        return shared.runtime.workspace()

    def close(self) -> None:
        """Stop the host, every local process, and the Azurite this session started; restore the environment."""
        if self.host is not None:
            self.host.stop()
            self.host = None
        try:
            workspace = shared.runtime.workspace()
        except Exception:
            workspace = None
        if workspace is not None and hasattr(workspace, "shutdown"):
            workspace.shutdown()
        if self.azurite is not None:
            self.azurite.stop()
            self.azurite = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        shared.runtime.reset()
