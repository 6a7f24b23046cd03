"""Which chatft the upload commands talk to (shared/commands/target.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shared.commands.target import Target, applied, resolve
from shared.local.session_file import NAME, live_sessions, remove_session, write_session

BLOB_URI = "CHATFT_STORAGE__blobServiceUri"  # the Functions host's identity-based setting, case kept


def test_a_live_session_is_found_and_a_dead_or_broken_one_is_not(tmp_path: Path) -> None:
    live, dead, broken = tmp_path / "live", tmp_path / "dead", tmp_path / "broken"
    write_session(live, {"LEDGER_TABLE": "livetable"})
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead.mkdir()
    (dead / NAME).write_text(json.dumps({"pid": int(gone.stdout), "settings": {"LEDGER_TABLE": "dead"}}))
    broken.mkdir()
    (broken / NAME).write_text('{"pid": ')  # a writer that crashed mid-file
    assert [s.settings["LEDGER_TABLE"] for s in live_sessions([dead, broken, live])] == ["livetable"]
    target = resolve(roots=(dead, broken, live))
    assert target.env["LEDGER_TABLE"] == "livetable" and "local session" in target.source
    remove_session(live)
    assert not (live / NAME).exists()


def test_a_settings_file_drops_the_apps_identity(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"AZURE_CLIENT_ID": "app", "CHATFT_STORAGE__clientId": "app", "A": "1"}}))
    assert resolve(settings=path).env == {"A": "1"}


def test_the_targets_storage_wins_over_the_shells(monkeypatch) -> None:
    """Was: a CHATFT_STORAGE connection string in the shell beat a target that names an account URL."""
    monkeypatch.setenv("CHATFT_STORAGE", "UseDevelopmentStorage=true")
    target = Target({BLOB_URI: "https://st.blob.core.windows.net/"}, "test")
    with applied(target):
        assert "CHATFT_STORAGE" not in os.environ
        assert dict(os.environ)[BLOB_URI] == "https://st.blob.core.windows.net/"
    assert os.environ["CHATFT_STORAGE"] == "UseDevelopmentStorage=true"
    assert BLOB_URI not in os.environ
