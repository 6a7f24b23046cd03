"""A prepared split on local disk, read one row at a time: what the LoRA job trains from, so its memory holds the
split's line offsets (8 bytes a conversation) and one batch, not the upload (streamed tokenisation, issue 22).

It is a read-only Sequence (len, an index, a slice, iteration), which is all a trainer asks of its rows, so the
same code trains from a list in the tests and from a file of any size in the job."""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload


class SplitRows(Sequence[dict[str, Any]]):
    """The JSON object on each non-blank line of `path` (a prepared split: chatft wrote and validated it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offsets = array("q")
        position = 0
        with path.open("rb") as file:
            for line in file:
                if line.strip():
                    self._offsets.append(position)
                position += len(line)
        self._file = path.open("rb")

    def __len__(self) -> int:
        return len(self._offsets)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        self._file.seek(self._offsets[index])
        return json.loads(self._file.readline())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self.path.open("rb") as file:  # its own handle: an index read inside the loop does not move it
            for line in file:
                if line.strip():
                    yield json.loads(line)

    def close(self) -> None:
        self._file.close()
