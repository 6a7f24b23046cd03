"""Turn chunk iterators (a blob download, a file) into buffered byte streams, with taps.

A tap sees every chunk once: that is how we hash an upload and drive a progress bar
without a second pass and without a Python call per line.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

CHUNK = 1 << 20


class ChunkReader(io.RawIOBase):
    """A raw, read-only stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes], tap: Callable[[bytes], object] | None = None) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")
        self._tap = tap
        self.bytes_read = 0
        """Bytes taken from the chunks so far."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            if self._tap is not None:
                self._tap(chunk)
            self.bytes_read += len(chunk)
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def file_chunks(f: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    return iter(lambda: f.read(size), b"")


class LargeBufferedReader(io.BufferedReader):
    """A BufferedReader with a 1 MiB buffer: readline on 3 KB lines costs a third of what it does on 8 KiB."""


def buffered(chunks: Iterable[bytes], tap: Callable[[bytes], object] | None = None) -> LargeBufferedReader:
    """A BufferedReader (fast C readline) over chunks, calling `tap` on each chunk."""
    return LargeBufferedReader(ChunkReader(chunks, tap), buffer_size=CHUNK)


def large_buffered(stream: BinaryIO) -> BinaryIO:
    """`stream` itself if it is already large-buffered, else a 1 MiB-buffered reader over it."""
    return stream if isinstance(stream, LargeBufferedReader) else buffered(file_chunks(stream))
