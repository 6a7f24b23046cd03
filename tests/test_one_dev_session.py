"""One `chatft dev` per state folder (issue 21, item 2): a second one in the same folder refuses at once,
naming the first's pid and address, and leaves the first's session file alone.

flock(2) locks belong to the open file description and are released when the holder's descriptors close,
which the kernel does when it dies (kill -9 included): https://man7.org/linux/man-pages/man2/flock.2.html
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from shared.entry.offline.dev_session import DevSession
from shared.local.session_file import NAME, SessionBusy, hold, live_sessions
from tests.dev_process import CHATFT, Dev, folder_env


def test_a_second_dev_in_the_same_folder_refuses_naming_the_first(tmp_path: Path) -> None:
    """Was: the second dev started (another Azurite, another reconciler), overwrote session.json and deleted it."""
    env = folder_env()
    first = Dev(tmp_path, env)
    try:
        session = next(live_sessions([tmp_path / ".chatft"]))
        began = time.monotonic()
        second = subprocess.run(
            [str(CHATFT), "dev", "--port", "0"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert time.monotonic() - began < 10
        assert f"pid {first.process.pid}" in second.stderr and session.address in second.stderr
        assert session.address.startswith("http://127.0.0.1:") and "Traceback" not in second.stderr
        kept = json.loads((tmp_path / ".chatft" / NAME).read_text())
        assert kept["pid"] == first.process.pid  # the first's file is still there, still its own
    finally:
        first.stop()


def test_a_killed_devs_folder_is_free_again_and_sessions_in_process_exclude_each_other(tmp_path: Path) -> None:
    state = tmp_path / "state"
    overrides = {"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(state)}
    with DevSession(overrides=overrides, port=0, say=lambda _: None, reuse_azurite=False) as first:
        with pytest.raises(SessionBusy) as refused:
            DevSession(overrides=overrides, port=0, say=lambda _: None, reuse_azurite=False).__enter__()
        assert refused.value.pid == os.getpid() and refused.value.address == first.address
    hold(state, "http://127.0.0.1:1").release()  # closed: the folder is free again
    child = subprocess.Popen(
        [
            "python3",
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[1]); from shared.local.session_file import hold; "
            "from pathlib import Path; lock = hold(Path(sys.argv[2]), 'http://127.0.0.1:2'); print('held', flush=True); "
            "time.sleep(60)",
            str(Path(__file__).resolve().parents[1]),
            str(state),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(SessionBusy, match=f"pid {child.pid}, http://127.0.0.1:2"):
            hold(state, "http://127.0.0.1:3")
    finally:
        child.kill()
        child.wait()
    hold(state, "http://127.0.0.1:3").release()  # kill -9 let it go
