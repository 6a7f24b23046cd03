"""Which chatft the upload commands talk to (shared/entry/cli/commands/target.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shared.entry.cli.commands.target import Target, applied, resolve
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


def test_a_session_is_found_from_a_subfolder_and_named_in_one_dim_line(tmp_path: Path) -> None:
    """Was: commands found `chatft dev` only from the folder it ran in (the repository root)."""
    from tests.dev_process import Dev, chatft, folder_env

    env = folder_env()
    dev = Dev(tmp_path, env)
    try:
        deep = tmp_path / "data" / "team a"
        deep.mkdir(parents=True)
        done = chatft(deep, env, "status", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == []
        assert f"using local session in {tmp_path / '.chatft'} (pid {dev.process.pid}, http://127.0.0.1:" in done.stderr
    finally:
        dev.stop()


def test_with_no_session_here_a_command_says_so_at_once(tmp_path: Path) -> None:
    """Was: 11.7 s of retries, then "connection refused". A refused TCP connection is answered at once by the
    kernel (ECONNREFUSED), so the check costs no wait: https://man7.org/linux/man-pages/man2/connect.2.html"""
    import time

    from shared.entry.offline.dev_session import free_port
    from tests.dev_process import chatft, folder_env

    closed = free_port()
    storage = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{closed}/devstoreaccount1;TableEndpoint=http://127.0.0.1:{closed}/x;"
    )
    (tmp_path / ".chatft").mkdir()  # a dev ran here once, and is gone
    began = time.monotonic()
    done = chatft(tmp_path, folder_env(CHATFT_STORAGE=storage, AZURE_ENV_NAME=""), "status")
    assert done.returncode == 2 and time.monotonic() - began < 5
    assert done.stderr.startswith("error: no chatft dev running for this folder")
    assert str(tmp_path / ".chatft") in done.stderr and "Traceback" not in done.stderr


def test_with_no_session_azds_environment_comes_before_the_shell(tmp_path: Path, monkeypatch) -> None:
    """azd keeps each environment in `.azure/<name>/.env` and the selected one as `.azure/config.json`'s
    defaultEnvironment (MicrosoftDocs/azure-dev-docs articles/azure-developer-cli/work-with-environments.md);
    AZURE_ENV_NAME names the environment (Azure/azure-dev cli/azd/docs/environment-variables.md)."""
    azure = tmp_path / ".azure"
    for name, table in (("dev", "devtable"), ("prod", "prodtable")):
        (azure / name).mkdir(parents=True)
        (azure / name / ".env").write_text(f'LEDGER_TABLE="{table}"\nAZURE_CLIENT_ID="app"\n')
    (azure / "config.json").write_text(json.dumps({"version": 1, "defaultEnvironment": "dev"}))
    sub = tmp_path / "data"
    sub.mkdir()
    monkeypatch.chdir(sub)
    monkeypatch.delenv("AZURE_ENV_NAME", raising=False)
    monkeypatch.setenv("LEDGER_TABLE", "shelltable")
    target = resolve()
    assert target.env == {"LEDGER_TABLE": "devtable"} and target.source == f"azd environment dev in {azure}"
    monkeypatch.setenv("AZURE_ENV_NAME", "prod")
    assert resolve().env == {"LEDGER_TABLE": "prodtable"}
