"""The `chatft` command on hostile input and hostile paths: never a traceback, never a lost byte,
bounded output and memory, exit codes 0 accepted / 1 rejected / 2 usage or I/O error."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.entry.cli.app import app
from tests.chats import conversation, jsonl, valid_file

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "chat_sample.jsonl"


def prepare(src: Path, out: Path, *extra: str):
    return runner.invoke(app, ["prepare", str(src), "--out", str(out), *extra])


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_prepare_refuses_to_write_over_its_input(tmp_path: Path, link: str) -> None:
    """Was: `chatft prepare d/train.jsonl --out d` replaced the 2,000-row input with the train split."""
    out = tmp_path / "d"
    out.mkdir()
    original = SAMPLE.read_bytes()
    if link == "same":
        src = out / "train.jsonl"
        src.write_bytes(original)
    else:
        src = tmp_path / "chats.jsonl"
        src.write_bytes(original)
        (out / "test.jsonl").symlink_to(src) if link == "symlink" else os.link(src, out / "test.jsonl")
    result = prepare(src, out)
    assert result.exit_code == 2
    assert "input" in result.output and "--out" in result.output
    assert src.read_bytes() == original
    assert not (out / "report.json").exists(), "refused before anything was written"


def test_prepare_into_a_file_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    """Was: a FileExistsError traceback with exit 1 (which means "rejected")."""
    target = tmp_path / "taken"
    target.write_text("mine")
    result = prepare(SAMPLE, target)
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert target.read_text() == "mine"


def test_error_messages_are_never_wrapped_mid_path(tmp_path: Path) -> None:
    """Was: Rich broke a long path over lines at the terminal width, so CI (longer tmp paths) failed and users
    could not copy the path or grep the log."""
    deep = tmp_path.joinpath(*(["a-rather-long-folder-name"] * 6))
    deep.mkdir(parents=True)
    target = deep / "taken"
    target.write_text("mine")
    result = prepare(SAMPLE, target)
    assert result.exit_code == 2
    assert f"{target} is a file, not a folder" in result.output


def test_prepare_writes_outputs_next_to_an_input_it_does_not_touch(tmp_path: Path) -> None:
    src = tmp_path / "chats.jsonl"
    src.write_bytes(SAMPLE.read_bytes())
    result = prepare(src, tmp_path)
    assert result.exit_code == 0, result.output
    assert src.read_bytes() == SAMPLE.read_bytes()
    assert {p.name for p in tmp_path.iterdir()} == {
        "chats.jsonl",
        "train.jsonl",
        "validation.jsonl",
        "test.jsonl",
        "report.json",
        "report.md",
    }, "nothing half-written is left behind"


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.jsonl"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("make", [_fifo, lambda _: Path("/dev/zero"), lambda tmp: tmp])
@pytest.mark.parametrize("command", ["validate", "prepare"])
def test_inputs_that_are_not_regular_files_are_refused_at_once(tmp_path: Path, make, command: str) -> None:
    """Was: a FIFO or /dev/zero as input hung forever."""
    path = make(tmp_path)
    args = [command, str(path)] + (["--out", str(tmp_path / "out")] if command == "prepare" else [])
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(runner.invoke(app, args)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert outcome, f"chatft {command} {path} hung"
    assert outcome[0].exit_code == 2
    assert "regular file" in outcome[0].output or "folder" in outcome[0].output


def test_non_utf8_bytes_give_json_naming_the_line(tmp_path: Path) -> None:
    """Was: a UnicodeDecodeError traceback and no JSON."""
    path = tmp_path / "l1.jsonl"
    path.write_bytes(b'{"messages":[{"role":"user","content":"caf\xe9"},{"role":"assistant","content":"oui"}]}\n')
    result = runner.invoke(app, ["validate", "--json", str(path)])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert {"line": 1, "code": "invalid-utf8", "path": "$"}.items() <= doc["errors"][1].items()
    assert "Latin-1" in doc["errors"][1]["message"]


@pytest.mark.parametrize(
    "data", [b"", b"\n\n", gzip.compress(valid_file(30)), valid_file(20).decode().encode("utf-16")], ids=str
)
def test_files_without_conversations_print_no_none(tmp_path: Path, data: bytes) -> None:
    """Was: "min None median None" for an empty or compressed file."""
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "None" not in result.output
    assert "no statistics" in result.output


def test_output_and_reports_are_bounded_however_many_lines_are_dropped(tmp_path: Path) -> None:
    """Was: 4 MB on stdout, a 6.9 MB report.json and a 3.9 MB report.md for 1 M alternating lines."""
    lines = 60_000
    src = tmp_path / "alternating.jsonl"
    with src.open("wb") as f:
        for i in range(lines):
            f.write(jsonl([conversation(i)]) if i % 2 == 0 else b"{not json\n")
    out = tmp_path / "out"
    result = prepare(src, out, "--drop-invalid")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_bytes())
    assert report["dropped_lines"] == lines // 2, "the total stays exact"
    assert report["error_totals"] == {"invalid-json": lines // 2}
    assert len(report["dropped_line_ranges"]) + report["dropped_line_ranges_omitted"] == lines // 2
    assert len(result.output) < 20_000
    assert (out / "report.json").stat().st_size < 64_000
    assert (out / "report.md").stat().st_size < 32_000
    assert "more range(s)" in (out / "report.md").read_text()


_MEASURE = """
import atexit, resource, sys
atexit.register(lambda: sys.stderr.write(f"\\nMAXRSS_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n"))
sys.argv = ["chatft", *sys.argv[1:]]
from shared.entry.cli.app import main
main()
"""


def _peak_kb(*args: str) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", _MEASURE, *args], cwd=ROOT, capture_output=True, text=True)
    [peak] = [int(x.split()[1]) for x in done.stderr.splitlines() if x.startswith("MAXRSS_KB")]
    return done.returncode, peak


def _hostile_lines(limit: int) -> list[bytes]:
    """Lines just under the line limit built to cost the most memory to decode."""

    def fill(prefix: bytes, unit: bytes, suffix: bytes) -> bytes:
        return prefix + unit * ((limit - 64 - len(prefix) - len(suffix)) // len(unit)) + suffix + b"\n"

    return [
        fill(b'{"messages":[', b"{},", b"{}]}"),
        fill(b'{"messages":[', b"1.5,", b"1]}"),
        fill(b'{"messages":[', b'{"role":"user","content":"x"},{"role":"assistant","content":"y"},', b"1]}"),
        fill(b'{"messages":[{"role":"user","content":"a"}],"x":[', b"[],", b"[]]}"),
        fill(b'{"messages":[{"role":"user","content":"a"}],"x":"', b"\\u00e9", b'"}'),
    ]


def test_memory_stays_bounded_whatever_the_input(tmp_path: Path) -> None:
    """Peak RSS of validate and prepare stays within 64 MB of the same command on a tiny file,
    with the duplicate check full and the most expensive lines the length limit lets through."""
    tiny = tmp_path / "tiny.jsonl"
    tiny.write_bytes(valid_file(20))
    src = tmp_path / "hostile.jsonl"
    with src.open("wb") as f:
        for start in range(0, 110_000, 10_000):  # more distinct conversations and ids than the check keeps
            f.write(jsonl([conversation(i) for i in range(start, start + 10_000)]))
        for line in _hostile_lines(1 << 20) * 2:
            f.write(line)
    _, baseline = _peak_kb("validate", str(tiny))
    for args in (("validate", str(src)), ("prepare", str(src), "--out", str(tmp_path / "o"), "--drop-invalid")):
        code, peak = _peak_kb(*args)
        assert code in (0, 1)
        assert peak - baseline < 64 * 1024, f"{args[0]}: {(peak - baseline) / 1024:.0f} MB above the interpreter"


def test_an_unexpected_failure_is_one_line_not_a_traceback(tmp_path: Path, monkeypatch) -> None:
    import shared.entry.cli.app

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(shared.entry.cli.app, "validate_stream", broken)
    monkeypatch.setattr(sys, "argv", ["chatft", "validate", str(SAMPLE)])
    monkeypatch.delenv("CHATFT_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        shared.entry.cli.app.main()
    assert exited.value.code == 2
