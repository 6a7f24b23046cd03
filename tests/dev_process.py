"""A real `chatft dev` in a folder of its own, and the other `chatft` commands run beside it (they find it by
its session file, as a user's second shell does): for tests that kill it, restart it and look at what survived."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.entry.offline.dev_session import free_port
from shared.local.session_file import live_sessions

ROOT = Path(__file__).resolve().parent.parent
CHATFT = ROOT / ".venv" / "bin" / "chatft"


def until(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s: {what}")


def folder_env(**extra: str) -> dict[str, str]:
    """The commands' environment: no shared Azurite, wide output, quiet timers unless the test asks."""
    env = {**os.environ, "COLUMNS": "250", "JANITOR_SCHEDULE": "0 0 0 1 1 *", **extra}
    env.pop("AZURITE_CONNECTION_STRING", None)
    return env


class Dev:
    """`chatft dev --port <free>` in `cwd` (its state in cwd/.chatft, its Azurite data in .chatft/azurite)."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [str(CHATFT), "dev", "--port", str(free_port())],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()
        until("chatft dev serving", self._serving, timeout=60)

    def _serving(self) -> bool:
        assert self.process.poll() is None, f"chatft dev stopped: {''.join(self.lines)}"
        return any(s.pid == self.process.pid for s in live_sessions([self.cwd / ".chatft"]))

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()


def chatft(cwd: Path, env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHATFT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def stage(cwd: Path, env: dict[str, str], name: str) -> dict[str, Any] | None:
    """`chatft status NAME --json`, or None while it cannot answer."""
    done = chatft(cwd, env, "status", name, "--json")
    return json.loads(done.stdout) if done.returncode == 0 else None


def jobs(cwd: Path) -> list[dict[str, Any]]:
    """The local backend's job records (job.json) in this folder."""
    found = []
    for path in sorted((cwd / ".chatft" / "jobs").glob("*/job.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):  # being written right now
            continue
    return found
