"""The README's "first ten minutes" works as written: every `chatft` line of its code block, in order, in a
fresh folder, against a real `chatft dev` (its own Azurite, found by the other commands on their own).

Only the clock differs: the reconciler and janitor run every few seconds instead of every few minutes.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from shared.entry.offline.dev_session import free_port
from shared.local.session_file import live_sessions

ROOT = Path(__file__).resolve().parent.parent
CHATFT = ROOT / ".venv" / "bin" / "chatft"
SECTION = "## The first ten minutes"


def readme_commands() -> list[list[str]]:
    """The `.venv/bin/chatft ...` lines of the section's first bash block, comments stripped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the section has a bash block"
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == ".venv/bin/chatft":
            commands.append(words[1:])
    return commands


def test_the_readme_lists_the_whole_life_of_an_upload() -> None:
    verbs = [c[0] for c in readme_commands()]
    assert verbs[:3] == ["dataset", "validate", "dev"]
    for verb in ("upload", "status", "score", "keep", "release", "retire", "redeploy"):
        assert verb in verbs, verb


@pytest.mark.skipif(not CHATFT.exists(), reason="needs the project's .venv (make setup)")
def test_the_first_ten_minutes_work_as_written(tmp_path: Path) -> None:
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    env = {
        **os.environ,
        "COLUMNS": "250",
        "DEPLOY_RECONCILE_SCHEDULE": "*/2 * * * * *",
        "JANITOR_SCHEDULE": "0 0 0 1 1 *",  # the README's keep/release/retire are what remove the endpoint here
        "LEDGER_TABLE": f"tenmin{uuid.uuid4().hex[:10]}",
        "UPLOAD_CONTAINER": f"tenmin-up-{uuid.uuid4().hex[:8]}",
        "PREPARED_CONTAINER": f"tenmin-prep-{uuid.uuid4().hex[:8]}",
    }
    env.pop("AZURITE_CONNECTION_STRING", None)
    commands = readme_commands()
    dev = None
    try:
        for args in commands:
            if args[0] == "dev":
                dev = subprocess.Popen(
                    [str(CHATFT), *args, "--port", str(free_port())],
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                deadline = time.monotonic() + 90
                while not list(live_sessions([tmp_path / ".chatft"])):
                    assert dev.poll() is None, f"chatft dev stopped: {dev.stderr.read()}"
                    assert time.monotonic() < deadline, "chatft dev did not start in 90 s"
                    time.sleep(0.2)
                continue
            if args[0] == "upload":
                args = [*args, "--interval", "0.5", "--timeout", "3m"]
            done = subprocess.run(
                [str(CHATFT), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
            )
            said = done.stdout + done.stderr
            assert done.returncode == 0, f"`chatft {shlex.join(args)}` exited {done.returncode}:\n{said}"
            assert "Traceback" not in said
            if args[0] == "upload":
                assert re.search(r"^✓ live\b", done.stdout, re.M), said
            if args[0] == "redeploy":
                wait_for_stage(tmp_path, env, "live")
    finally:
        if dev is not None:
            dev.send_signal(signal.SIGINT)
            dev.wait(timeout=20)


def wait_for_stage(cwd: Path, env: dict[str, str], stage: str, timeout: float = 120) -> None:
    """`chatft status --json` until the upload reaches `stage` (the redeploy runs on the dev's timer)."""
    import json

    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            [str(CHATFT), "status", "train_sft.jsonl", "--json"], cwd=cwd, env=env, capture_output=True, text=True
        )
        if done.returncode == 0 and json.loads(done.stdout)["stage"] == stage:
            return
        assert time.monotonic() < deadline, f"not {stage} in {timeout} s: {done.stdout}{done.stderr}"
        time.sleep(0.5)
