"""`chatft upload --follow` outlives the `chatft dev` it follows: when dev is killed it says so once, finds the
restarted dev again by its session file (new Azurite ports), and follows the upload to the end."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shared.entry.cli.commands.upload import RECONNECTING
from tests.dev_process import CHATFT, ROOT, Dev, folder_env, until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's"),
]


def test_follow_reconnects_to_a_restarted_dev_and_follows_to_live(tmp_path: Path) -> None:
    lines = (ROOT / "samples" / "chat_sample.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "small.jsonl").write_bytes(b"".join(lines[:300]))
    env = folder_env(DEPLOY_RECONCILE_SCHEDULE="*/1 * * * * *")
    dev = Dev(tmp_path, env)
    follow = subprocess.Popen(
        [str(CHATFT), "upload", "small.jsonl", "--follow", "--interval", "0.2", "--timeout", "90s"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    said: list[str] = []
    threading.Thread(target=lambda: said.extend(follow.stdout), daemon=True).start()
    try:
        until("the upload acknowledged", lambda: any("MD5 verified" in line for line in said))
        dev.kill9()
        until("one line saying dev is gone", lambda: any(RECONNECTING in line for line in said), timeout=20)
        before = len(said)
        dev = Dev(tmp_path, env)
        assert follow.wait(timeout=90) == 0, "".join(said)
    finally:
        if follow.poll() is None:
            follow.kill()
        dev.stop()
    output = "".join(said)
    assert output.count(RECONNECTING) == 1 and f"reconnected: local session in {tmp_path / '.chatft'}" in output
    assert any(line.startswith("✓ live") for line in said[before:]), output
    assert "Traceback" not in output
