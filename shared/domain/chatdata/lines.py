"""Read a byte stream as JSONL lines with bounded memory, and recognise files that are not JSONL.

A line longer than the limit is never held whole: the rest of it is skipped in chunks. Whatever
happens, the reader can drain the stream to its end, so a caller hashing the bytes as they are
read (ingest) always hashes the whole upload.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .streams import large_buffered

UTF8_BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 1 << 16
"""How much of the first line the file-level checks look at."""
_CHUNK = 1 << 20

# Magic numbers of formats people zip their JSONL into by habit.
COMPRESSED_MAGIC: dict[bytes, str] = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
}
_UTF16_32_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)
CR_SEPARATED = re.compile(rb"[}\]][ \t]*\r[ \t\r]*[{\[]")
"""A value closed and the next opened across a bare CR: JSON never allows that, CR-only line endings do."""
_PRETTY_OPENING = re.compile(rb"\s*[\[{]\s*[\[{]?\s*")


@dataclass(frozen=True, slots=True)
class Oversized:
    """Stands in for a line that was longer than the limit; only its length is kept."""

    length: int

    def __len__(self) -> int:
        return self.length


def sniff_compression(head: bytes) -> str | None:
    """Name the compression format whose magic number starts `head`, if any."""
    for magic, name in COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def sniff_wide_encoding(head: bytes) -> str | None:
    """Name UTF-16/UTF-32 text, by its byte order mark or by the NUL bytes that ASCII gets in it."""
    for bom, name in _UTF16_32_BOMS:
        if head.startswith(bom):
            return name
    sample = head[:64]
    if len(sample) < 8:
        return None

    def mostly_nul(start: int, step: int) -> bool:
        lane = sample[start::step]
        return lane.count(0) >= 0.75 * len(lane)

    if mostly_nul(1, 4) and mostly_nul(2, 4) and mostly_nul(3, 4):
        return "UTF-32 (little-endian)"
    if mostly_nul(0, 4) and mostly_nul(1, 4) and mostly_nul(2, 4):
        return "UTF-32 (big-endian)"
    if mostly_nul(1, 2):
        return "UTF-16 (little-endian)"
    if mostly_nul(0, 2):
        return "UTF-16 (big-endian)"
    return None


def is_pretty_json_opening(line: bytes) -> bool:
    """A first line that only opens an array or object: pretty-printed JSON, not JSON Lines."""
    return _PRETTY_OPENING.fullmatch(line) is not None


class LineReader:
    """The lines of a byte stream, each at most `max_line_bytes` (longer ones become `Oversized`).

    Reads through a 1 MiB buffer: on 3 KB lines, `readline` then costs a third of what it does
    on an 8 KiB-buffered file (`bytes.split` on chunks is slower still: it scans byte by byte).
    Memory holds the buffer and at most one line.
    """

    def __init__(self, stream: BinaryIO, max_line_bytes: int) -> None:
        self.stream = large_buffered(stream)
        self.max_line_bytes = max_line_bytes
        self.lines = 0
        """Lines numbered so far (the validator's loop updates it as it goes)."""

    @property
    def bytes_read(self) -> int:
        """Every byte taken from the source so far (exact once `drain` has run)."""
        return self.stream.raw.bytes_read  # type: ignore[attr-defined]

    def head(self) -> bytes:
        """The next bytes (up to SNIFF_BYTES), without consuming them."""
        return self.stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]  # type: ignore[attr-defined]

    def next(self) -> bytes | Oversized | None:
        """The next line with its LF, an Oversized stand-in, or None at the end."""
        line = self.stream.readline(self.max_line_bytes + 1)
        if not line:
            return None
        self.lines += 1
        return self.oversized(line) if len(line) > self.max_line_bytes and not line.endswith(b"\n") else line

    def rest(self) -> Iterator[bytes]:
        """The remaining lines, read by C code; the caller numbers them and checks their length."""
        return iter(functools.partial(self.stream.readline, self.max_line_bytes + 1), b"")

    def oversized(self, head: bytes) -> Oversized:
        """Skip the rest of a line whose first bytes were `head`."""
        rest = 0
        while True:
            chunk = self.stream.readline(_CHUNK)
            rest += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                return Oversized(len(head) + rest)

    def drain(self) -> None:
        """Read to the end without keeping anything: a file rejected at its first line is still read whole."""
        read = self.stream.read
        ended_with_newline = True
        while chunk := read(_CHUNK):
            self.lines += chunk.count(b"\n")
            ended_with_newline = chunk.endswith(b"\n")
        if not ended_with_newline:
            self.lines += 1
