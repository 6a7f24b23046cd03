"""Read a byte stream as JSONL lines with bounded memory.

A line longer than the limit is never held whole: the rest of it is skipped in chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

UTF8_BOM = b"\xef\xbb\xbf"
_SKIP_CHUNK = 1 << 20

# Magic numbers of formats people zip their JSONL into by habit.
COMPRESSED_MAGIC: dict[bytes, str] = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
}


@dataclass(frozen=True, slots=True)
class Oversized:
    """Stands in for a line that was longer than the limit; only its length is kept."""

    length: int


def sniff_compression(head: bytes) -> str | None:
    """Name the compression format whose magic number starts `head`, if any."""
    for magic, name in COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            return name
    return None


class LineReader:
    """Iterate (1-based line number, line bytes with newline, or Oversized); count bytes read."""

    def __init__(self, stream: BinaryIO, max_line_bytes: int) -> None:
        self._stream = stream
        self._max = max_line_bytes
        self.bytes_read = 0

    def __iter__(self) -> Iterator[tuple[int, bytes | Oversized]]:
        readline, stream, limit, max_line = self._stream.readline, self._stream, self._max + 1, self._max
        number = total = 0
        try:
            while line := readline(limit):
                number += 1
                total += len(line)
                if len(line) > max_line and not line.endswith(b"\n"):
                    rest = _skip_rest_of_line(stream)
                    total += rest
                    yield number, Oversized(len(line) + rest)
                else:
                    yield number, line
        finally:
            self.bytes_read = total


def _skip_rest_of_line(stream: BinaryIO) -> int:
    skipped = 0
    while True:
        chunk = stream.readline(_SKIP_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped
