"""Chunk iterators become buffered streams that read the same bytes, and taps see every chunk once."""

from __future__ import annotations

import hashlib
import io

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.chatdata.streams import buffered, file_chunks
from shared.domain.chatdata.validator import validate_stream
from tests.chats import valid_file


@given(st.lists(st.binary(max_size=300), max_size=30))
def test_buffered_chunks_read_back_identically(chunks: list[bytes]) -> None:
    seen = hashlib.sha256()
    stream = buffered(iter(chunks), tap=seen.update)
    assert stream.read() == b"".join(chunks)
    assert seen.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


@given(st.integers(1, 700))
def test_validation_does_not_depend_on_chunk_boundaries(chunk_size: int) -> None:
    data = valid_file(25) + b"\n" + b"{broken\n" + valid_file(3, start=200)
    whole = validate_stream(io.BytesIO(data), source="x.jsonl").as_dict()
    chunked = validate_stream(buffered(file_chunks(io.BytesIO(data), chunk_size)), source="x.jsonl").as_dict()
    assert chunked == whole
