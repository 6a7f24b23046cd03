"""The `chatft` command: the JSON contract, exit codes, prepare output, progress kept off stdout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.entry.cli.app import app
from tests.chats import jsonl, line, valid_file

runner = CliRunner()
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chat_sample.jsonl"


def run_json(*args: str):
    result = runner.invoke(app, ["validate", "--json", *args])
    return result, json.loads(result.stdout)


def test_validate_json_contract_for_an_accepted_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_bytes(valid_file(30))
    result, doc = run_json(str(path))
    assert result.exit_code == 0
    assert doc["valid"] is True and doc["conversations"] == 30
    assert doc["errors"] == [] and isinstance(doc["warnings"], list)
    assert {"messages_per_conversation", "estimated_tokens", "roles", "bytes_read"} <= doc["stats"].keys()
    assert sum(doc["splits"].values()) == 30


def test_validate_json_reports_line_code_path_message_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        valid_file(20) + line({"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]})
    )
    result, doc = run_json(str(path))
    assert result.exit_code == 1
    assert doc["valid"] is False
    assert {"line": 21, "code": "role-invalid", "path": "messages[1].role"}.items() <= doc["errors"][0].items()
    assert "robot" in doc["errors"][0]["message"]


def test_strict_flag(tmp_path: Path) -> None:
    path = tmp_path / "turns.jsonl"
    bad = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
        ]
    }
    path.write_bytes(valid_file(20) + line(bad))
    assert run_json(str(path))[0].exit_code == 0
    result, doc = run_json("--strict", str(path))
    assert result.exit_code == 1
    assert doc["errors"][0]["code"] == "turns-not-alternating"


def test_unreadable_file_and_bad_usage_exit_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["validate", str(tmp_path / "missing.jsonl")]).exit_code == 2
    assert runner.invoke(app, ["validate"]).exit_code == 2
    assert runner.invoke(app, ["validate", "--split", "1,2", str(SAMPLE)]).exit_code == 2


def test_human_report_names_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(valid_file(20) + b"{nope\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "REJECTED" in result.stdout and "invalid-json" in result.stdout and "21" in result.stdout


def test_prepare_writes_split_and_report(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b"\xef\xbb\xbf"
        + jsonl(
            [
                {
                    "prompt": "p",
                    "prompt_id": f"i{i}",
                    "other": 1,
                    "messages": [
                        {"role": "user", "content": f"q{i}", "name": "x"},
                        {"role": "assistant", "content": f"a{i}"},
                    ],
                }
                for i in range(40)
            ]
        ).replace(b"\n", b"\r\n")
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.stdout
    rows = [
        r
        for name in ("train", "validation", "test")
        for r in (out / f"{name}.jsonl").read_bytes().splitlines(keepends=True)
    ]
    assert len(rows) == 40
    for row in rows:
        assert row.endswith(b"}\n") and b"\r" not in row and not row.startswith(b"\xef")
        obj = json.loads(row)
        assert set(obj) == {"messages", "prompt_id"}
        assert all(set(m) == {"role", "content"} for m in obj["messages"])
        assert row == json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    report = json.loads((out / "report.json").read_text())
    assert report["valid"] and report["warning_totals"]["bom"] == 1 and report["warning_totals"]["crlf"] == 1
    assert "ACCEPTED" in (out / "report.md").read_text()
    first = (out / "train.jsonl").read_bytes()
    runner.invoke(app, ["prepare", str(src), "--out", str(out)])
    assert (out / "train.jsonl").read_bytes() == first


def test_prepare_rejected_file_writes_only_the_report(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(valid_file(20) + b"[1]\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", str(src), "--out", str(out)])
    assert result.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"]


def test_prepare_drop_invalid_lists_every_dropped_line(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(valid_file(20) + b"[1]\n{bad\n" + valid_file(2, start=30) + b'"x"\n')
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", str(src), "--out", str(out), "--drop-invalid"])
    assert result.exit_code == 0, result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["valid"] is True
    assert report["dropped_lines"] == 3 and report["dropped_line_ranges"] == ["21-22", "25"]
    assert sum(len((out / f"{n}.jsonl").read_bytes().splitlines()) for n in ("train", "validation", "test")) == 22


def test_files_written_by_other_tools_are_accepted(tmp_path: Path) -> None:
    """json.dumps defaults (spaces, \\u escapes) and the committed sample, not our own writer."""
    path = tmp_path / "stdlib.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Café {i} — “quoted” 数据"},
                {"role": "assistant", "content": "Oui 😊"},
            ]
        }
        for i in range(25)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run_json(str(path))[1]["valid"] is True
    result, doc = run_json(str(SAMPLE))
    assert result.exit_code == 0 and doc["conversations"] == 2000 and doc["warnings"] == []


@pytest.mark.skipif(
    shutil.which("chatft", path=str(Path(sys.executable).parent)) is None, reason="console script not installed"
)
def test_console_script_keeps_progress_off_stdout(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(valid_file(30_000))
    assert path.stat().st_size > 4 << 20
    exe = shutil.which("chatft", path=str(Path(sys.executable).parent))
    env = {**os.environ, "FORCE_COLOR": "1"}  # make rich draw the bar although stderr is a pipe
    done = subprocess.run([exe, "validate", "--json", str(path)], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert "validating" in done.stderr, "the progress bar is drawn on stderr"
    doc = json.loads(done.stdout)
    assert doc["conversations"] == 30_000
