"""The small things a new user meets first (issue 21 item 12): a rejected report's wording, the top-level
help, --version, shell completion, copyable hints."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shared.cli import app
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
