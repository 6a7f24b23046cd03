"""Write the normalised split files: atomically, so a rejected upload or a full disk leaves no partial data."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Mapping
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


def open_output(path: Path) -> BinaryIO:
    """A new output file, buffered (one place, so every writer here fails the same way)."""
    return path.open("wb", buffering=BUFFER)


class OutputError(Exception):
    """Writing an output failed (a full disk, say): told apart from the input failing while it is read.
    The message names the output as the user knows it, never a private work file."""

    def __init__(self, path: Path, cause: OSError) -> None:
        self.path = path
        full = cause.errno in (errno.ENOSPC, errno.EDQUOT)
        fix = ": free some space or choose another --out folder" if full else ""
        super().__init__(f"cannot write {path}: {cause.strerror or cause}{fix}")


class SplitFiles:
    """A RowSink writing train/validation/test JSONL into a private folder until `commit`.

    Any write that fails raises OutputError naming the output, and leaves nothing behind: the private
    folder is removed even when closing its files fails too (a full disk fails the flush as well)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._work = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
        self._files: list[BinaryIO] = []
        try:
            for name in SPLITS:
                self._files.append(open_output(self._work / f"{name}.jsonl"))
        except OSError as exc:
            self.discard()
            raise OutputError(self.out_dir / f"{SPLITS[len(self._files)]}.jsonl", exc) from exc

    def _failed(self, split: int, exc: OSError) -> OutputError:
        self.discard()
        return OutputError(self.out_dir / f"{SPLITS[split]}.jsonl", exc)

    def write(self, split: int, row: bytes) -> None:
        try:
            self._files[split].write(row)
        except OSError as exc:
            raise self._failed(split, exc) from exc

    def move_train_rows(self, moves: dict[int, int]) -> None:
        """Rewrite train without the moved rows and append them to their new splits."""
        try:
            self._files[0].close()
            train = self._work / "train.jsonl"
            kept = self._work / "train.kept"
            with train.open("rb") as src, open_output(kept) as dst:
                for index, row in enumerate(src):
                    if index in moves:
                        self._files[moves[index]].write(row)
                    else:
                        dst.write(row)
            kept.replace(train)
            self._files[0] = train.open("ab", buffering=BUFFER)
        except OSError as exc:
            raise self._failed(0, exc) from exc

    def targets(self) -> dict[str, Path]:
        """Where `commit` puts each split: {split name: path in out_dir}."""
        return {name: self.out_dir / f"{name}.jsonl" for name in SPLITS}

    def commit(self, extra: Mapping[str, bytes] | None = None, *, splits: bool = True) -> dict[str, Path]:
        """Move the finished files (and `extra`, {file name: bytes}, e.g. the report) into `out_dir` at once:
        everything is written out in the private folder first, so a full disk leaves no output half there.
        Without `splits` only `extra` is kept. Returns {split name: path} of the splits moved in."""
        for split, f in enumerate(self._files):
            try:
                f.close()
            except OSError as exc:
                raise self._failed(split, exc) from exc
        for name, data in (extra or {}).items():
            try:
                with open_output(self._work / name) as f:
                    f.write(data)
            except OSError as exc:
                self.discard()
                raise OutputError(self.out_dir / name, exc) from exc
        moved = self.targets() if splits else {}
        try:
            for name, target in moved.items():
                (self._work / f"{name}.jsonl").replace(target)
            for name in extra or {}:
                (self._work / name).replace(self.out_dir / name)
        except OSError as exc:
            self.discard()
            raise OutputError(self.out_dir, exc) from exc
        shutil.rmtree(self._work, ignore_errors=True)
        return moved

    def discard(self) -> None:
        """Remove the private folder; closing a file that cannot flush (a full disk) does not stop that."""
        for f in self._files:
            with contextlib.suppress(OSError):
                f.close()
        shutil.rmtree(self._work, ignore_errors=True)

    def __enter__(self) -> SplitFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._work.exists():
            self.discard()
