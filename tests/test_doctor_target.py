"""`chatft doctor` checks the target it is given: with ML_BACKEND=local, Azurite (as storage), the local
backend's state folder and the running `chatft dev`, never Azure. Was: it asked Azure for a token and a
workspace whatever ML_BACKEND said, and an address nothing answers on was retried for minutes (the SDKs'
defaults: azure-storage-blob's 20 s connect and 3 retries, _shared/constants.py and policies.py; azure-core's
10 retries for tables, policies/_retry.py) before a fix that named the Azure setting.

Real Azurite; a refused port (bound, then closed) for a storage that does not answer."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.entry.cli import app as cli
from shared.local.azurite import DEV_ACCOUNT, connection_string
from shared.local.session_file import write_session

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_sign_in(monkeypatch) -> None:
    """Nothing here may ask Azure for a token; if the doctor did, DefaultAzureCredential fails at once."""
    for name in [k for k in os.environ if k.startswith(("AZURE_", "IDENTITY_", "MSI_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_target(tmp_path: Path, storage: str, env: dict[str, str]) -> tuple[Path, dict[str, str], Path]:
    state = tmp_path / "state"
    values = {
        **{k: env[k] for k in ("UPLOAD_CONTAINER", "PREPARED_CONTAINER")},
        "CHATFT_STORAGE": storage,
        "ML_BACKEND": "local",
        "LOCAL_STATE_DIR": str(state),
        "LEDGER_TABLE": "ledgerdoctorlocal",
    }
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": values}), encoding="utf-8")
    return path, values, state


def doctor(settings: Path) -> tuple[str, int, float]:
    began = time.monotonic()
    result = runner.invoke(cli.app, ["doctor", "--settings", str(settings)], env={"COLUMNS": "200"})
    return result.output, result.exit_code, time.monotonic() - began


def test_a_local_target_is_checked_offline(tmp_path, storage_env, blob_service, azurite) -> None:
    from azure.data.tables import TableServiceClient

    settings, values, state = local_target(tmp_path, azurite.connection_string, storage_env)
    for container in (values["UPLOAD_CONTAINER"], values["PREPARED_CONTAINER"]):
        blob_service.create_container(container)
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    tables.create_table_if_not_exists(values["LEDGER_TABLE"])
    (state / "jobs" / "job-1").mkdir(parents=True)
    write_session(state, values)  # this process stands for the running `chatft dev`

    output, code, _ = doctor(settings)
    assert code == 0, output
    for line in ("✓ storage containers", "✓ ledger table", "✓ local backend", "✓ chatft dev", "✓ guards"):
        assert line in output, output
    assert f"pid {os.getpid()}" in output and "1 job)" in output
    assert "identity" not in output and "workspace" not in output and "az login" not in output

    (state / "session.json").unlink()
    output, code, _ = doctor(settings)
    assert code == 1 and "✗ chatft dev" in output and f"no chatft dev running for {state}" in output, output
    assert "fix: start `chatft dev`" in output


def test_an_azurite_that_does_not_answer_is_one_line_within_5_s(tmp_path, storage_env) -> None:
    port = refused_port()
    settings, _, state = local_target(tmp_path, connection_string("127.0.0.1", port, port, port), storage_env)

    output, code, elapsed = doctor(settings)
    assert code == 1 and elapsed < 5, (elapsed, output)
    assert "✗ storage containers" in output and f"127.0.0.1:{port}: connection refused" in output, output
    assert "`chatft dev` starts it" in output and "ServiceUri" not in output
    assert "ledger table" not in output, "the same unreachable account is said once"
    assert "HTTPConnection" not in output and "urllib3" not in output and DEV_ACCOUNT not in output
    assert "✗ local backend" in output and f"no state folder {state}" in output


def test_without_flags_the_doctor_checks_the_target_every_command_uses(tmp_path, storage_env, monkeypatch) -> None:
    """No --settings/--env and no session: the shell's settings over local.settings*.json, as every other
    command reads them (shared.entry.cli.commands.target.resolve); ML_BACKEND=local there is checked offline, against
    the Azurite it names, and the doctor says which target it used."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ML_BACKEND", "local")
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path / "state"))
    result = runner.invoke(cli.app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "using this shell's environment" in result.stderr, result.output
    assert "✗ storage containers" in result.output and "(`chatft dev` does)" in result.output
    assert storage_env["UPLOAD_CONTAINER"] in result.output and "✗ chatft dev" in result.output
    assert "identity" not in result.output and "workspace" not in result.output
