"""Start (or reuse) the Azurite storage emulator on free local ports, and stop what we started.

Azurite keeps its metadata in LokiJS databases that it saves every 5 s and when it closes on SIGTERM
(node_modules/azurite/dist/src/azurite.js; `autosaveInterval: 5000` in each Loki*MetadataStore). So an
Azurite with data on disk is never SIGKILLed while it may hold acknowledged writes: it gets SIGTERM when
we die (even by kill -9; repeats of it are ignored, azurite_signals.js), and the next start on the same
folder waits for it to finish saving.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from shared.local import procs
from shared.local.state import read_json, write_json

# Azurite's published development account (a well-known public value, not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_PORTS = (10000, 10001, 10002)
ROOT = Path(__file__).resolve().parents[2]
OWNER_FILE = "chatft-azurite.json"
"""In Azurite's data folder: its pid and the pid of the process that started it."""
SIGNALS_PRELOAD = Path(__file__).with_name("azurite_signals.js")
"""Keeps a repeated SIGTERM from killing Azurite while it saves (see the file)."""
SAVE_SECONDS = 10.0
"""How long an Azurite with data on disk may take to save and exit after SIGTERM before it is killed."""


def connection_string(host: str, blob: int, queue: int, table: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{DEV_ACCOUNT};QueueEndpoint=http://{host}:{queue}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{DEV_ACCOUNT};"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _is_azurite(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{DEV_ACCOUNT}?comp=list", timeout=1) as r:
            return "Azurite" in r.headers.get("Server", "")
    except urllib.error.HTTPError as e:
        return "Azurite" in (e.headers.get("Server") or "")
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise RuntimeError("Azurite is not installed: run `npm ci` (make test and make run do it for you)")


@dataclass
class Azurite:
    connection_string: str
    process: subprocess.Popen[bytes] | None = None
    location: Path | None = None
    """Its data folder (None: in memory, or not started here)."""

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def problem(self) -> str | None:
        """Why this Azurite cannot serve any more (it exited), or None."""
        if self.process is not None and self.process.poll() is not None:
            return f"Azurite exited with code {self.process.returncode}"
        return None

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM, then SIGKILL after `grace`: in memory there is nothing to save (0.5 s), on disk it saves
        and exits (it may take up to SAVE_SECONDS)."""
        if self.process is not None:
            default = SAVE_SECONDS if self.location is not None else 0.5
            procs.stop([self.process], grace=default if grace is None else grace)
            if self.location is not None and self.process.poll() is not None:
                found = _owner(self.location)
                if found and found[0] == self.process.pid:
                    (self.location / OWNER_FILE).unlink(missing_ok=True)


def _owner(location: Path) -> tuple[int, int] | None:
    """(Azurite's pid, its starter's pid) from the data folder, or None."""
    try:
        found = read_json(location / OWNER_FILE, None)
    except (OSError, ValueError):
        return None
    if isinstance(found, dict) and isinstance(found.get("pid"), int) and isinstance(found.get("owner"), int):
        return found["pid"], found["owner"]
    return None


def _serves(pid: int, location: Path) -> bool:
    """Whether `pid` is an Azurite on this data folder (a reused pid is not)."""
    if not procs.is_running(pid):
        return False
    try:
        return str(location).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # no /proc: trust the pid
        return True


def _previous_finished(location: Path, timeout: float = SAVE_SECONDS) -> None:
    """An Azurite on this folder whose starter died (kill -9 of `chatft dev`) got SIGTERM and is saving:
    wait until it exits, so we never load a half-saved database; kill it if it hangs. If its starter still
    runs, the folder is in use: one clear error."""
    found = _owner(location)
    if found is None or not _serves(found[0], location):
        return
    pid, owner = found
    if owner != os.getpid() and procs.is_running(owner):
        raise RuntimeError(
            f"{location} is in use by the Azurite of another chatft dev (pid {owner}): stop that one first"
        )
    deadline = time.monotonic() + timeout
    while _serves(pid, location) and time.monotonic() < deadline:
        procs.check_interrupt()
        time.sleep(0.05)
    if _serves(pid, location):
        procs.stop([pid], grace=1.0)


def start_or_reuse(timeout: float = 30.0, location: Path | None = None, reuse: bool = True) -> Azurite:
    """Reuse AZURITE_CONNECTION_STRING or an Azurite on the default ports; else start one on free ports.

    With `reuse=False`, always start a private one (a run that must share no state with any other).
    With `location`, the started Azurite keeps its data in that folder; otherwise in memory.
    """
    given = os.environ.get("AZURITE_CONNECTION_STRING")
    if reuse and given:
        return Azurite(given)
    if reuse and _is_azurite(DEFAULT_PORTS[0]) and all(_listening(p) for p in DEFAULT_PORTS[1:]):
        return Azurite(connection_string("127.0.0.1", *DEFAULT_PORTS))
    if location is not None:
        location = location.resolve()
        _previous_finished(location)
    ports = (_free_port(), _free_port(), _free_port())
    persistence = ["--location", str(location)] if location else ["--inMemoryPersistence"]
    args = [
        azurite_binary(),
        "--silent",
        *persistence,
        "--skipApiVersionCheck",
        "--disableProductStyleUrl",
        "--disableTelemetry",  # else it probes the network, and that keeps it from exiting on SIGTERM
        "--blobHost",
        "127.0.0.1",
        "--queueHost",
        "127.0.0.1",
        "--tableHost",
        "127.0.0.1",
        "--blobPort",
        str(ports[0]),
        "--queuePort",
        str(ports[1]),
        "--tablePort",
        str(ports[2]),
    ]
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe nobody reads (a full pipe would block Azurite)
        env = dict(os.environ)
        env["NODE_OPTIONS"] = f"{env.get('NODE_OPTIONS', '')} --require {json.dumps(str(SIGNALS_PRELOAD))}".strip()
        process = procs.start(
            args,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            stdin=subprocess.DEVNULL,
            on_parent_death=signal.SIGTERM if location else signal.SIGKILL,  # SIGTERM: it saves, then exits
        )
        azurite = Azurite(connection_string("127.0.0.1", *ports), process, location)
        try:  # whatever happens while it starts (Ctrl-C included), what we started is stopped
            deadline = time.monotonic() + timeout
            while not all(_listening(p) for p in ports):
                procs.check_interrupt()
                if process.poll() is not None:
                    errors.seek(0)
                    raise RuntimeError(
                        f"Azurite exited with {process.returncode}: {errors.read().decode(errors='replace').strip()}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Azurite did not listen on {ports} within {timeout:.0f}s")
                time.sleep(0.05)
            if location is not None:
                write_json(location / OWNER_FILE, {"pid": process.pid, "owner": os.getpid()})
        except BaseException:
            azurite.stop(grace=0)
            raise
    return azurite
