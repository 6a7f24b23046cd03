"""One local development session: settings, Azurite, the host runner and the local backend,
started together and stopped together, fast (nothing is left running afterwards)."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import shared.entry.app_wiring
from shared.local import procs
from shared.local.azurite import Azurite, start_or_reuse
from shared.local.host import TOPIC_PATH, LocalHost, Say, load_local_settings
from shared.local.session_file import SessionLock, hold, remove_session, write_session
from shared.local.trainers import trainer_line

WEBHOOK = "http://127.0.0.1:{port}/runtime/webhooks/EventGrid?functionName={function}"
FINISH_SECONDS = 1.0
"""How long invocations still running at close may take to finish (Azurite stays up meanwhile)."""


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
        reuse_azurite: bool = True,
    ) -> None:
        """`reuse_azurite=False`: always a private Azurite (in memory unless `azurite_location`), so
        nothing is shared with any other run."""
        self.overrides = dict(overrides or {})
        self.reuse_azurite = reuse_azurite
        self.port = port or free_port()
        self.azurite_location = azurite_location
        self.poll_seconds = poll_seconds
        self.say = say
        self.log_file = log_file
        self.azurite: Azurite | None = None
        self.host: LocalHost | None = None
        self._workspace: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._log_handler: logging.Handler | None = None
        self._session_dir: Path | None = None
        self._lock: SessionLock | None = None

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
        state_dir = Path(values.get("LOCAL_STATE_DIR") or ".chatft").absolute()
        values["LOCAL_STATE_DIR"] = str(state_dir)  # commands from a subfolder read the same state
        # one session per state folder: a second one refuses now, naming the first (SessionBusy)
        self._lock = hold(state_dir, self.address)
        with socket.socket() as probe:  # a busy webhook port fails now, before Azurite touches its data folder
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server binds
            probe.bind(("127.0.0.1", self.port))
        if self.azurite_location is not None:
            self.azurite_location.mkdir(parents=True, exist_ok=True)
        self.azurite = start_or_reuse(location=self.azurite_location, reuse=self.reuse_azurite)
        procs.check_interrupt()
        for name in ("AzureWebJobsStorage", "CHATFT_STORAGE"):
            if values.get(name, "").startswith("UseDevelopmentStorage") or name not in values:
                values[name] = self.azurite.connection_string
        if "LOCAL_EVENT_WEBHOOK" not in self.overrides:  # the events must reach this session's webhook
            values["LOCAL_EVENT_WEBHOOK"] = WEBHOOK.format(port=self.port, function="job_events")
        if not values.get("EVENTS_TOPIC_ENDPOINT") and "EVENTS_TOPIC_ENDPOINT" not in self.overrides:
            values["EVENTS_TOPIC_ENDPOINT"] = f"http://127.0.0.1:{self.port}{TOPIC_PATH}"  # the runner prints them
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handler = logging.FileHandler(self.log_file)
            self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
            logging.getLogger().addHandler(self._log_handler)
            logging.getLogger("chatft").setLevel(logging.INFO)
        shared.entry.app_wiring.reset()
        import function_app

        procs.check_interrupt()
        self._workspace = workspace = shared.entry.app_wiring.workspace()
        if workspace is not None and hasattr(workspace, "restart_stopped_endpoints"):
            for name in workspace.restart_stopped_endpoints():
                self.say(f"local  restarted endpoint {name}")
        self.host = LocalHost(function_app.app, port=self.port, poll_seconds=self.poll_seconds, say=self.say).start()
        procs.check_interrupt()
        if workspace is not None and hasattr(workspace, "resume_interrupted_jobs"):  # their events reach the host
            for name in workspace.resume_interrupted_jobs():
                self.say(f"local  resumed job {name} (its runner stopped before it finished)")
        # other `chatft` commands (upload, status, keep, ...) in another shell find this session by it
        self._session_dir = state_dir
        write_session(self._session_dir, values, self.address)

    @property
    def address(self) -> str:
        """Where this session's host listens (its webhooks)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def workspace(self) -> Any:
        return shared.entry.app_wiring.workspace()

    def webhooks(self) -> list[str]:
        """The Event Grid webhook address of each Event Grid function."""
        functions = self.host.functions.items() if self.host else []
        return [
            WEBHOOK.format(port=self.host.port, function=name)
            for name, f in sorted(functions)
            if f.get_trigger().type == "eventGridTrigger"
        ]

    def describe(self) -> list[str]:
        """What a user needs to feed this session: storage, the upload container, an upload example,
        the webhooks. The connection string is printed only if it is Azurite's (a public dev key)."""
        assert self.host is not None and self.azurite is not None
        storage, container = os.environ.get("CHATFT_STORAGE", ""), shared.entry.app_wiring.settings().upload_container
        where = f"started here, data in {self.azurite_location or 'memory'}" if self.azurite.started_here else "reused"
        lines = [f"chatft dev: hosting {', '.join(sorted(self.host.functions))}; Ctrl-C stops everything"]
        if storage == self.azurite.connection_string:
            lines.append(f"storage   Azurite ({where}): {storage}")
        else:
            lines.append("storage   CHATFT_STORAGE from local.settings.json (not Azurite; not printed)")
            storage = "<CHATFT_STORAGE>"
        lines += [
            f"uploads   container {container}: upload a JSONL file there to start the loop, e.g.",
            f'          az storage blob upload --connection-string "{storage}" -c {container} -f chats.jsonl -n chats.jsonl',
            *(f"{'functions' if i == 0 else '':<9} {line}" for i, line in enumerate(self.host.listing())),
            *(f"webhook   POST {url}" for url in self.webhooks()),
            f"training  {trainer_line(shared.entry.app_wiring.settings())}",
            f"state     {os.environ.get('LOCAL_STATE_DIR', '.chatft')} (jobs, models, endpoints)"
            + (f"; log {self.log_file}" if self.log_file else ""),
        ]
        return lines

    def problem(self) -> str | None:
        """Why this session cannot make progress any more (Azurite died, a host loop died), or None."""
        return (self.azurite.problem() if self.azurite else None) or (self.host.problem() if self.host else None)

    def close(self) -> None:
        """Stop the host, every local process, and the Azurite this session started; restore the environment.

        Fast (well under 2 s) and uninterruptible: new work stops at once, every child process is
        stopped in parallel, running invocations get FINISH_SECONDS (the host threads are daemons),
        then Azurite goes."""
        with procs.signals_deferred():
            deadline = time.monotonic() + FINISH_SECONDS
            if self._session_dir is not None:
                remove_session(self._session_dir)
                self._session_dir = None
            host, self.host = self.host, None
            if host is not None:
                host.stop(timeout=0)
            workspace, self._workspace = self._workspace, None  # this session's, never one built from other settings
            if workspace is not None and hasattr(workspace, "shutdown"):
                workspace.shutdown()
            if host is not None:
                host.join(deadline)
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
            shared.entry.app_wiring.reset()
            if self._lock is not None:  # last: a next session starts only once this one is all gone
                self._lock.release()
                self._lock = None
