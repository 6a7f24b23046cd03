"""The small things a new user meets first (issue 21 item 12): a rejected report's wording, the top-level
help, --version, shell completion, copyable hints."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.entry.cli.app import app
from tests.chats import valid_file

runner = CliRunner()


def test_a_rejected_report_never_says_its_conversations_were_accepted(tmp_path: Path) -> None:
    """20 valid conversations and one bad line: the file is rejected, so nothing was accepted, in report.md
    and in what `chatft prepare` prints."""
    src = tmp_path / "in.jsonl"
    src.write_bytes(valid_file(20) + b"[1]\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", str(src), "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    md = (out / "report.md").read_text()
    assert "REJECTED" in md and "Conversations accepted: 20" not in md
    assert "- Conversations accepted: none (rejected; 20 valid conversations read, 1 error)" in md
    assert "## Statistics (of the 20 valid conversations)" in md
    assert "20 valid conversations, none accepted" in result.stdout
    assert json.loads((out / "report.json").read_text())["conversations"] == 20  # the JSON contract is unchanged


def test_top_level_help_places_every_command_under_a_task() -> None:
    """`chatft --help` says what the tool does end to end and lists every command under the task it serves
    (typer's rich_help_panel), so a command added later without a place shows up in the default panel and fails."""
    import typer.main

    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    names = sorted(typer.main.get_command(app).commands)
    assert {"validate", "upload", "status", "retire", "dev", "doctor"} <= set(names)
    for name in names:
        assert f"│ {name} " in result.stdout, name
    assert "╭─ Commands " not in result.stdout, "a command has no task panel"
    for panel in ("Check and prepare data", "Uploads", "Endpoints", "Offline", "Setup"):
        assert f"╭─ {panel} " in result.stdout
    assert "upload" in result.stdout.split("╭─")[0]  # the description covers the whole loop, not just validate


def test_version_prints_the_installed_version() -> None:
    """`chatft --version` prints the installed distribution's version (importlib.metadata), as `az --version`
    and `func --version` do, and exits 0 without running a command."""
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"chatft {version('chatft')}"


def test_shell_completion_is_offered_and_completes_command_names() -> None:
    """typer's --show-completion prints the script a shell sources; the script calls `chatft` back with
    _CHATFT_COMPLETE=complete_bash and COMP_WORDS/COMP_CWORD, which answers the matching commands
    (typer/_completion_shared.py COMPLETION_SCRIPT_BASH, typer/_completion_classes.py BashComplete)."""
    import os
    import subprocess
    import sys

    chatft = str(Path(sys.executable).with_name("chatft"))
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    script = subprocess.run([chatft, "--show-completion", "bash"], capture_output=True, text=True, env=env, timeout=60)
    assert script.returncode == 0 and "_CHATFT_COMPLETE=complete_bash" in script.stdout
    answer = subprocess.run(
        [chatft],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "_CHATFT_COMPLETE": "complete_bash", "COMP_WORDS": "chatft re", "COMP_CWORD": "1"},
    )
    assert answer.returncode == 0
    assert set(answer.stdout.split()) >= {"release", "retire", "redeploy", "retire-all"}


def test_printed_commands_quote_names_with_spaces(tmp_path, blob_service, storage_env, monkeypatch) -> None:
    """A hint is pasted into a shell as printed: a file and an upload name with a space come out quoted
    (shlex.join, POSIX sh quoting), so `chatft status my chats.jsonl` never becomes two arguments."""
    import shlex

    from tests.test_upload_command import settings_for

    target = settings_for(storage_env, tmp_path, monkeypatch)
    folder = tmp_path / "team data"
    folder.mkdir()
    path = folder / "my chats.jsonl"
    path.write_bytes(valid_file(30))
    first = runner.invoke(app, ["upload", str(path), "--settings", str(target)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["upload", str(path), "--settings", str(target)], env={"COLUMNS": "400"})
    assert again.exit_code == 0, again.output
    assert "`chatft status 'my chats.jsonl'`" in again.stdout
    hint = again.stdout.split("to retry it, `")[1].split("`")[0]
    assert shlex.split(hint) == ["chatft", "upload", str(path), "--name", "my chats.jsonl", "--overwrite"]


def _views():
    from datetime import datetime, timedelta, timezone

    from shared.domain.upload_stage import Milestone, Stage, UploadView

    now = datetime.now(timezone.utc)

    def view(name: str, stage: Stage, **kw) -> UploadView:
        return UploadView(
            name=name,
            dataset=name.split(".")[0],
            sha256="717136e1260f928d96af568882706e226e697c1bd182124f307f9d825b0fdab5",
            stage=stage,
            detail="",
            milestones=(Milestone(stage, ""),),
            since=now - timedelta(minutes=3),
            uploaded_at=now - timedelta(hours=2, minutes=5),
            **kw,
        )

    return now, [
        view(
            "team/customer-support-2026.jsonl",
            Stage.LIVE,
            model="chatft-customer-support-2026-717136e1:257893740152",
            endpoint="cft-customer-supp-909c4f23f0",
            token_f1=0.938,
            latency_p95_ms=19,
        ),
        view("chat_sample.jsonl", Stage.DEPLOYING, step="wait_endpoint", endpoint="cft-demo-chat-sa-909c4f23f0"),
        view(
            "bad.jsonl",
            Stage.FAILED,
            error="the fine-tuning job chatft-demo-chat_sample-717136e1260f-a1 failed: CUDA out of memory",
        ),
    ]


@pytest.mark.parametrize("width", [60, 80, 100, 120, 159, 170])
def test_the_narrow_status_table_never_breaks_a_word(width, monkeypatch) -> None:
    """In a terminal narrower than the wide table, every word in the table is printed whole or cut with an
    ellipsis, never folded over two lines (`cft-demo-chat-s` / `a-909c4f23f0`), and no line is wider than
    the terminal; the upload name and stage are always there."""
    import io

    from rich.console import Console

    from shared.entry.cli.commands import status

    now, views = _views()
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=True, color_system=None, legacy_windows=False)
    monkeypatch.setattr(status, "out", console)
    status._print_table(views, now, show_all=True)
    text = buffer.getvalue()
    words = set(" ".join(status.COLUMNS).split())
    for v in views:
        words |= set(" ".join([v.name, v.sha256[:12], v.stage.value, f"({v.step})", v.endpoint, v.error]).split())
        words |= set(" ".join([v.model.rsplit(":", 1)[-1], status._evaluated(v), status._ages(v, now)]).split())
    hint = "- job and report: `chatft status NAME`, a wider terminal, or --json"
    words |= set(hint.split())
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), text
    for token in text.split():
        assert token in words or token.endswith("…"), f"{token!r} is a broken word in:\n{text}"
    for v in views:
        assert v.name in text and v.stage.value in text


def test_upload_drop_invalid_uploads_only_the_valid_conversations(
    tmp_path, blob_service, storage_env, monkeypatch
) -> None:
    """As `chatft prepare --drop-invalid`: invalid lines are dropped and listed, and what is uploaded is the
    valid conversations only, so the ingest function (whatever its DROP_INVALID) accepts exactly them."""
    from shared.domain.chatdata.options import ValidationOptions
    from shared.domain.chatdata.validator import validate_stream
    from tests.test_upload_command import blobs, settings_for

    target = settings_for(storage_env, tmp_path, monkeypatch)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(valid_file(20) + b"[1]\n{bad\n" + valid_file(10, start=30))
    refused = runner.invoke(app, ["upload", str(path), "--settings", str(target)])
    assert refused.exit_code == 1 and blobs(blob_service, storage_env["UPLOAD_CONTAINER"]) == {}
    result = runner.invoke(
        app, ["upload", str(path), "--drop-invalid", "--settings", str(target)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 0, result.output
    assert "dropped 2 invalid line(s): 21-22; uploading the 30 valid conversations" in result.output
    stored = blobs(blob_service, storage_env["UPLOAD_CONTAINER"])["mixed.jsonl"]
    report = validate_stream(io.BytesIO(stored), ValidationOptions(), source="mixed.jsonl")
    assert report.valid and report.conversations == 30 and not report.warnings.totals
