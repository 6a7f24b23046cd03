"""`chatft upload` stops well: Ctrl-C during the block upload says in one line what storage holds, and a file
rejected on its first bytes is not read (and hashed) to its end first.

Blocks are staged with Put Block and only become the blob with Put Block List; blocks never committed are
discarded by the service (https://learn.microsoft.com/rest/api/storageservices/put-block: "uncommitted
blocks are garbage-collected" after a week; Get Block List with blocklisttype=uncommitted lists them,
https://learn.microsoft.com/rest/api/storageservices/get-block-list). The Python SDK stages blocks for a body
over max_single_put_size and commits them last (azure/storage/blob/_upload_helpers.py upload_block_blob).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from typer.testing import CliRunner

import shared.entry.app_wiring
from shared.entry.cli.app import app
from tests.chats import valid_file

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture
def target(storage_env, tmp_path, monkeypatch) -> Path:
    values = {**storage_env, "LEDGER_TABLE": f"int{uuid.uuid4().hex[:12]}"}
    monkeypatch.setenv("LEDGER_TABLE", values["LEDGER_TABLE"])
    shared.entry.app_wiring.reset()
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": values}))
    return path


@pytest.mark.slow
def test_ctrl_c_during_the_block_upload_says_nothing_was_committed(target, tmp_path, blob_service, storage_env) -> None:
    """Was: a blank line (and click's "Aborted!"), nothing saying whether the blob exists."""
    path = tmp_path / "big.jsonl"
    with path.open("wb") as f:
        for start in range(0, 160_000, 2000):  # about 70 MB: nine 8 MiB blocks, one at a time
            f.write(valid_file(2000, start))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CHATFT_DEBUG": ""}
    command = [sys.executable, "-c", "from shared.entry.cli.app import main; main()", "upload", str(path)]
    proc = subprocess.Popen(
        [*command, "--concurrency", "1", "--settings", str(target)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    blob = blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "big.jsonl")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if blob.get_block_list("uncommitted")[1]:
                break  # blocks are going up: the moment of the Ctrl-C
        except ResourceNotFoundError:
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "the upload ended before any block was seen"
    proc.send_signal(signal.SIGINT)
    out, errs = proc.communicate(timeout=60)
    lines = [line for line in errs.decode().splitlines() if line.strip() and not line.startswith("using ")]
    assert proc.returncode == 130, (out, errs)
    assert len(lines) == 1 and lines[0].startswith("interrupted: nothing was committed"), lines
    assert not blob.exists(), "nothing was committed"


def test_a_file_rejected_by_its_first_bytes_is_not_read_to_its_end(target, tmp_path) -> None:
    """Was: a 2 GB file rejected at its first bytes was still read and hashed to its end (67 s)."""
    path = tmp_path / "chats.jsonl"
    with path.open("wb") as f:
        f.write(b"\x1f\x8b\x08\x00" + b"\x00" * 60)  # a gzip stream: rejected whole at once
        f.truncate(1 << 30)  # 1 GiB, sparse
    result = runner.invoke(app, ["upload", str(path), "--settings", str(target)])
    assert result.exit_code == 1, result.output
    assert "gzip" in result.output and "nothing was uploaded" in result.output
    read = int(re.search(r"([\d,]+) bytes", result.output).group(1).replace(",", ""))
    assert read < 16 << 20, f"read {read} bytes of a file rejected by its first 4"
