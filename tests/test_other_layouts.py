"""A file in another popular layout (OpenAI's legacy prompt/completion pairs, ShareGPT's from/value and
human/gpt speakers) gets one hint naming `chatft dataset`, and `chatft dataset` does turn it into chat rows that
`chatft validate` accepts (issue 21 item 12).

Layouts: OpenAI's legacy fine-tuning data is `{"prompt": ..., "completion": ...}` per line
(https://platform.openai.com/docs/guides/legacy-fine-tuning, "Prepare training data"); ShareGPT rows are
`{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}]}` (as in the ShareGPT-format datasets on
the Hugging Face Hub, e.g. `anon8231489123/ShareGPT_Vicuna_unfiltered`)."""

from __future__ import annotations

import io
import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.domain.chatdata.issues import Code
from shared.domain.chatdata.options import ValidationOptions
from shared.domain.chatdata.validator import validate_stream
from shared.entry.cli.app import app
from tests.chats import valid_file
from tests.test_dataset_command import no_network  # noqa: F401  (autouse: `datasets` offline, sockets refused)

runner = CliRunner()


def _prompt_completion(i: int) -> dict:
    return {"prompt": f"What is {i} + {i}?", "completion": f" {2 * i}"}


def _sharegpt(i: int) -> dict:
    return {"conversations": [{"from": "human", "value": f"q {i}"}, {"from": "gpt", "value": f"a {i}"}]}


def _human_gpt_roles(i: int) -> dict:
    return {"messages": [{"role": "human", "content": f"q {i}"}, {"role": "gpt", "content": f"a {i}"}]}


LAYOUTS = {
    "prompt/completion": _prompt_completion,
    "ShareGPT conversations": _sharegpt,
    "ShareGPT speakers": _human_gpt_roles,
}


def _rows(make, n: int = 30) -> bytes:
    return b"".join(json.dumps(make(i)).encode() + b"\n" for i in range(n))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_another_layout_gets_one_hint_naming_chatft_dataset(layout: str) -> None:
    report = validate_stream(io.BytesIO(_rows(LAYOUTS[layout])), ValidationOptions(), source="data.jsonl")
    hints = [f for f in report.warnings.examples if f.code is Code.OTHER_LAYOUT]
    assert report.warnings.totals[Code.OTHER_LAYOUT] == 1 and len(hints) == 1
    assert hints[0].line == 1
    assert "chatft dataset data.jsonl --out DIR --percent 100" in hints[0].message


def test_a_chat_file_gets_no_layout_hint() -> None:
    report = validate_stream(io.BytesIO(valid_file(30)), ValidationOptions(), source="data.jsonl")
    assert Code.OTHER_LAYOUT not in report.warnings.totals


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_hinted_command_converts_the_file(layout: str, tmp_path: Path) -> None:
    """The hint's command, run as printed (with the real paths for FILE and DIR), writes files that validate."""
    source = tmp_path / "my data.jsonl"
    source.write_bytes(_rows(LAYOUTS[layout], 40))
    shown = runner.invoke(app, ["validate", str(source)], env={"COLUMNS": "400"})
    assert shown.exit_code == 1 and shown.stdout.count("chatft dataset") == 1
    out = tmp_path / "out"
    hinted = shlex.split(shlex.join(["chatft", "dataset", str(source), "--out", str(out), "--percent", "100"]))
    result = runner.invoke(app, hinted[1:])
    assert result.exit_code == 0, result.output
    first = json.loads((out / "train.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
    assert runner.invoke(app, ["validate", str(out / "train.jsonl")]).exit_code == 0


def test_dataset_json_prints_the_manifest(tmp_path: Path) -> None:
    """`chatft dataset --json` prints manifest.json's object, the keys that file already holds."""
    source = tmp_path / "pairs.jsonl"
    source.write_bytes(_rows(_prompt_completion, 40))
    out = tmp_path / "out"
    result = runner.invoke(app, ["dataset", str(source), "--out", str(out), "--percent", "100", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc == json.loads((out / "manifest.json").read_text())
    assert doc["splits"]["train"]["layout"] == "prompt_completion" and doc["splits"]["train"]["rows_written"] == 40
