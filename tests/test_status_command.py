"""`chatft status` on Azurite: the --json contract, finding an upload by each kind of name, rejected
uploads (no ledger row) shown from their report, clear errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

import function_app
import shared.entry.app_wiring
from shared.domain.ledger import Status, UploadKey
from shared.domain.upload_stage import JSON_KEYS
from shared.entry.cli.app import app
from tests.hosting import invoke_blob_trigger
from tests.test_upload_command import chats, settings_for, upload

runner = CliRunner()


@pytest.fixture
def target(storage_env, tmp_path, monkeypatch):
    return settings_for(storage_env, tmp_path, monkeypatch)


def status(target, *args: str):
    return runner.invoke(app, ["status", *args, "--settings", str(target)], env={"COLUMNS": "300"})


def live_row(sha: str, source: str) -> None:
    """The ledger row of an upload that went live (what the job event and reconciler leave)."""
    ledger, now = shared.entry.app_wiring.ledger(), datetime.now(timezone.utc)
    key = UploadKey("chats", sha)
    ledger.claim(key, upload_etag="", source=source, cid=sha[:12], now=now, stale_after=timedelta(1))
    entry = ledger.get(key)
    entry.status, entry.job_name = Status.LIVE, "chatft-chats-abc-a1"
    entry.deploy = {"model_name": "Phi-4-chatft", "model_version": "3", "endpoint": "cft-chats-xyz", "step": "live"}
    entry.deploy |= {"live_at": now.isoformat(), "scoring_uri": "http://127.0.0.1:9/score"}
    assert ledger.save(entry)


def test_upload_then_status_json_has_exactly_the_documented_keys(target, tmp_path, storage_env) -> None:
    path = chats(tmp_path)
    assert upload(target, str(path)).exit_code == 0
    result = status(target, "--json")
    assert result.exit_code == 0, result.output
    [doc] = json.loads(result.stdout)
    assert tuple(doc) == JSON_KEYS
    assert doc["name"] == "chats.jsonl" and doc["stage"] == "uploaded" and doc["status"] is None
    assert "hint" not in status(target, "chats.jsonl").stdout, "just uploaded: nothing to worry about yet"
    invoke_blob_trigger(function_app.app, "ingest_upload", "chats.jsonl")  # ML_BACKEND=none: validated only
    one = json.loads(status(target, "chats.jsonl", "--json").stdout)
    assert tuple(one) == JSON_KEYS and one["stage"] == "validated" and "not submitted" in one["detail"]
    assert one["report"].startswith(f"{storage_env['PREPARED_CONTAINER']}/chats/") and one["upload_age_seconds"] >= 0


def test_status_finds_an_upload_by_blob_sha_job_and_endpoint(target, tmp_path, storage_env) -> None:
    path = chats(tmp_path)
    assert upload(target, str(path)).exit_code == 0
    sha = json.loads(status(target, "chats.jsonl", "--json").stdout)["sha256"]
    live_row(sha, f"{storage_env['UPLOAD_CONTAINER']}/chats.jsonl")
    for query in ("chats.jsonl", sha[:8], "chatft-chats-abc-a1", "cft-chats-xyz"):
        doc = json.loads(status(target, query, "--json").stdout)
        assert (doc["stage"], doc["sha256"], doc["model"]) == ("live", sha, "Phi-4-chatft:3"), query
    table = status(target)
    assert table.exit_code == 0 and "live" in table.stdout and "cft-chats-xyz" in table.stdout
    one = status(target, sha[:8])
    assert "http://127.0.0.1:9/score" in one.stdout and "validated → submitted → training" in one.stdout


def test_a_rejected_upload_shows_from_its_report(target, tmp_path, storage_env) -> None:
    assert upload(target, str(chats(tmp_path, b'{"messages": 5}\n', "bad.jsonl")), "--no-validate").exit_code == 0
    invoke_blob_trigger(function_app.app, "ingest_upload", "bad.jsonl")
    [doc] = json.loads(status(target, "--json").stdout)
    assert doc["stage"] == "rejected" and doc["report"].endswith("report.md") and doc["error"]
    assert json.loads(status(target, "bad.jsonl", "--json").stdout)["stage"] == "rejected"


def test_a_blob_uploaded_by_other_means_is_found_by_its_report(target, storage_env, blob_service) -> None:
    container = blob_service.get_container_client(storage_env["UPLOAD_CONTAINER"])
    container.create_container()
    container.upload_blob("portal.jsonl", b'{"messages": []}\n')
    assert json.loads(status(target, "portal.jsonl", "--json").stdout)["stage"] == "uploaded"
    invoke_blob_trigger(function_app.app, "ingest_upload", "portal.jsonl")
    assert json.loads(status(target, "portal.jsonl", "--json").stdout)["stage"] == "rejected"


def test_unknown_upload_is_a_clear_exit_2(target, tmp_path) -> None:
    assert upload(target, str(chats(tmp_path))).exit_code == 0
    result = status(target, "nothing-like-it.jsonl")
    assert result.exit_code == 2 and "no upload matches 'nothing-like-it.jsonl'" in result.stderr
    assert "Traceback" not in result.output


def test_no_uploads_yet(target, azurite) -> None:
    """Before the app's first upload there is no ledger table, and `chatft status` (read-only, run as a person
    whose role is on that table alone) does not create it."""
    from azure.data.tables import TableServiceClient

    result = status(target)
    assert result.exit_code == 0 and "no uploads yet" in result.stdout
    assert json.loads(status(target, "--json").stdout) == []
    assert json.loads(status(target, "--all", "--json").stdout) == []
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    table = json.loads(target.read_text())["Values"]["LEDGER_TABLE"]
    assert table not in {t.name for t in tables.list_tables()}


@pytest.mark.parametrize("problem", ["missing", "garbled"])
def test_unreadable_settings_or_storage_is_one_line_exit_2(tmp_path, problem) -> None:
    settings = tmp_path / "s.json"
    values = {} if problem == "missing" else {"CHATFT_STORAGE": "not a connection string"}
    settings.write_text(json.dumps({"Values": {"ML_BACKEND": "none", **values}}))
    result = runner.invoke(app, ["status", "--settings", str(settings)])
    assert result.exit_code == 2 and "error:" in result.stderr and "Traceback" not in result.output


def test_status_of_an_upload_nothing_happened_to_says_what_to_check(target, tmp_path, monkeypatch) -> None:
    """shared.domain.upload_stage.stalled_hint, shown by `chatft status NAME` (no blob trigger ran here)."""
    import shared.domain.upload_stage as upload_stage

    assert upload(target, str(chats(tmp_path))).exit_code == 0
    monkeypatch.setattr(upload_stage, "STALLED_AFTER_SECONDS", 0.0)
    lines = {
        line.split(None, 1)[0]: line.split(None, 1)[1]
        for line in status(target, "chats.jsonl").stdout.splitlines()
        if line.strip()
    }
    assert lines["stage"].startswith("uploaded") and lines["hint"].startswith("no ingest result after ")
