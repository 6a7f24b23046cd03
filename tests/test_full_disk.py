"""A full disk under `chatft prepare --out` or `chatft dataset --out`: one line naming the output and "no
space left", exit 2, and nothing left behind (no `.partial-*` folder, no half-written split).

The disk is a real 64 KiB tmpfs where the tests may mount one (root, as in the dev container and CI);
elsewhere the split writers' file opening is swapped for files that refuse every byte past 64 KiB with
OSError(ENOSPC), which is what write(2) returns on a full file system (man 2 write: "ENOSPC The device
containing the file referred to by fd has no room for the data"), raised by Python's buffered writer at
write or at the flush in close (https://docs.python.org/3/library/io.html#io.BufferedWriter.flush).
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import shared.domain.chatdata.prepare as prepare
import shared.entry.cli.commands.dataset as dataset
from shared.entry.cli.app import app
from tests.chats import valid_file
from tests.test_dataset_command import no_network  # noqa: F401 (offline Hub, refused sockets, private cache)

runner = CliRunner()
CAPACITY = 64 << 10


class _FullDiskFile(io.RawIOBase):
    """A file on a disk with CAPACITY bytes free: later bytes get ENOSPC."""

    def __init__(self, path: Path, room: list[int]) -> None:
        self._file = path.open("wb", buffering=0)
        self._room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        n = min(len(data), self._room[0])
        if n == 0 and len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room[0] -= n
        return self._file.write(bytes(data[:n])) or 0

    def close(self) -> None:
        self._file.close()
        super().close()


@pytest.fixture
def full_disk(tmp_path, monkeypatch) -> Iterator[Path]:
    """A folder on a file system with 64 KiB free."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={CAPACITY}", "tmpfs", str(mount)], check=False
        ).returncode
        == 0
    )
    if not mounted:
        room = [CAPACITY]

        def open_output(path: Path) -> io.BufferedWriter:
            return io.BufferedWriter(_FullDiskFile(path, room), prepare.BUFFER)

        for module in (prepare, dataset):
            monkeypatch.setattr(module, "open_output", open_output)
    try:
        yield mount
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def _left_behind(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_prepare_on_a_full_disk_says_so_once_and_leaves_nothing(full_disk, tmp_path) -> None:
    source = tmp_path / "chats.jsonl"
    source.write_bytes(valid_file(3000))  # about 1.2 MB: more than the disk and than the writer's buffer
    out = full_disk / "out"
    result = runner.invoke(app, ["prepare", str(source), "--out", str(out)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "no space left" in errors[0].lower() and str(out) in errors[0], errors
    assert str(source) not in errors[0], "the input is fine: the error is about the output"
    assert "Traceback" not in result.output
    assert _left_behind(out) == []


@pytest.mark.usefixtures("no_network")
def test_dataset_on_a_full_disk_names_the_output_not_the_split(full_disk, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "messages": [
                [{"role": "user", "content": f"question {i} " * 20}, {"role": "assistant", "content": "answer " * 40}]
                for i in range(2000)
            ]
        }
    )
    source = tmp_path / "chats.parquet"
    pq.write_table(table, source)
    out = full_disk / "out"
    result = runner.invoke(app, ["dataset", str(source), "--out", str(out), "--percent", "100"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "no space left" in errors[0].lower() and str(out / "train.jsonl") in errors[0], errors
    assert "cannot read split" not in result.output
    assert _left_behind(out) == []
