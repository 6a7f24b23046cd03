"""Write the normalised split files: atomically, so a rejected upload leaves no partial data."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from .split import SPLITS

BUFFER = 1 << 20
OUTPUT_NAMES = (*(f"{name}.jsonl" for name in SPLITS), "report.json", "report.md")
"""Every file `chatft prepare` writes into its output folder."""


class OutputConflict(ValueError):
    """An output would overwrite the input, or the output folder cannot be one."""


def check_outputs(out_dir: Path, *inputs: Path) -> None:
    """Refuse an output folder that is a file, or whose outputs would land on an input (same file,
    through any name, symlink or hard link)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputConflict(f"--out {out_dir} is a file, not a folder: give a folder for the split files")
    for name in OUTPUT_NAMES:
        target = out_dir / name
        for source in inputs:
            with contextlib.suppress(OSError):
                if target.exists() and os.path.samefile(target, source):
                    raise OutputConflict(
                        f"{target} is the input file {source}: writing the {name} output would destroy it; "
                        "choose another --out folder"
                    )


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so readers see the old or the new content, never half of it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SplitFiles:
    """A RowSink writing train/validation/test JSONL into a private folder until `commit`."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._work = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
        self._files: list[BinaryIO] = [(self._work / f"{name}.jsonl").open("wb", buffering=BUFFER) for name in SPLITS]

    def write(self, split: int, row: bytes) -> None:
        self._files[split].write(row)

    def move_train_rows(self, moves: dict[int, int]) -> None:
        """Rewrite train without the moved rows and append them to their new splits."""
        self._files[0].close()
        train = self._work / "train.jsonl"
        kept = self._work / "train.kept"
        with train.open("rb") as src, kept.open("wb", buffering=BUFFER) as dst:
            for index, row in enumerate(src):
                if index in moves:
                    self._files[moves[index]].write(row)
                else:
                    dst.write(row)
        kept.replace(train)
        self._files[0] = train.open("ab", buffering=BUFFER)

    def _close(self) -> None:
        for f in self._files:
            f.close()

    def commit(self) -> dict[str, Path]:
        """Move the finished files into `out_dir`; return {split name: path}."""
        self._close()
        paths = {}
        for name in SPLITS:
            target = self.out_dir / f"{name}.jsonl"
            (self._work / f"{name}.jsonl").replace(target)
            paths[name] = target
        shutil.rmtree(self._work, ignore_errors=True)
        return paths

    def discard(self) -> None:
        self._close()
        shutil.rmtree(self._work, ignore_errors=True)

    def __enter__(self) -> SplitFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._work.exists():
            self.discard()
