"""Hostile uploads get a clean verdict, never a traceback, with bounded memory."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import tracemalloc

from shared.chatdata.options import ValidationOptions
from shared.chatdata.validator import validate_stream
from tests.chats import conversation, valid_file


def codes(report) -> set[str]:
    return {f.code.value for f in report.errors.examples}


def peak_bytes(data: bytes, **options: object) -> tuple[object, int]:
    stream = io.BytesIO(data)
    tracemalloc.start()
    try:
        report = validate_stream(stream, ValidationOptions(**options), source="hostile.jsonl")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return report, peak


def test_30_mb_single_line_is_rejected_without_holding_it() -> None:
    huge = json.dumps(
        {"messages": [{"role": "user", "content": "a" * (30 << 20)}, {"role": "assistant", "content": "b"}]}
    )
    data = valid_file(20) + huge.encode() + b"\n" + valid_file(5, start=100)
    report, peak = peak_bytes(data)
    assert codes(report) == {"line-too-long"}
    assert report.errors.examples[0].line == 21
    assert report.conversations == 25
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB while reading a 30 MiB line"


def test_30_mb_line_without_newline_at_end_of_file() -> None:
    data = valid_file(20) + b"x" * (30 << 20)
    report, peak = peak_bytes(data, max_line_bytes=1 << 20)
    assert codes(report) == {"line-too-long"}
    assert peak < 6 << 20


def test_deeply_nested_extra_field_is_a_clean_error() -> None:
    nested = "[" * 100_000 + "]" * 100_000
    bad = json.dumps(conversation(1))[:-1] + f', "extra": {nested}}}'
    report = validate_stream(io.BytesIO(valid_file(20) + bad.encode() + b"\n"), source="deep.jsonl")
    assert codes(report) == {"json-too-deep"}
    assert report.errors.examples[0].line == 21


def test_deep_but_legal_nesting_in_an_extra_field_is_only_an_unknown_key() -> None:
    bad = json.dumps({**conversation(1, turns=2), "extra": [[[[[1]]]]]})
    report = validate_stream(io.BytesIO(valid_file(20) + bad.encode() + b"\n"), source="deep.jsonl")
    assert report.valid
    assert "unknown-key" in {f.code.value for f in report.warnings.examples}


def test_gzip_bytes_in_a_jsonl_name() -> None:
    report = validate_stream(io.BytesIO(gzip.compress(valid_file(100))), source="data.jsonl")
    assert codes(report) == {"compressed-file"}
    assert not report.valid


def test_pretty_printed_json_array_file() -> None:
    data = json.dumps([conversation(i) for i in range(15)], indent=2).encode()
    report = validate_stream(io.BytesIO(data), source="array.jsonl")
    assert not report.valid
    first = min((f for f in report.errors.examples if f.line > 0), key=lambda f: f.line)
    assert first.line == 1 and first.code.value == "invalid-json"
    assert "JSON array" in first.message
    assert report.errors.total > 15


def test_single_line_json_array_is_not_an_object() -> None:
    data = json.dumps([conversation(i) for i in range(15)]).encode() + b"\n"
    report = validate_stream(io.BytesIO(data), source="array.jsonl")
    assert codes(report) == {"not-an-object", "too-few-conversations"}


def test_random_binary_never_crashes() -> None:
    rng = random.Random(3)
    for size in (1, 7, 100, 5000, 300_000):
        data = bytes(rng.getrandbits(8) for _ in range(size)) if size < 10_000 else os.urandom(size)
        report = validate_stream(io.BytesIO(data), source="noise.jsonl")
        assert not report.valid
        assert report.errors.total >= 1


def test_lone_surrogate_escape_is_invalid_json() -> None:
    bad = b'{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "x"}]}\n'
    report = validate_stream(io.BytesIO(valid_file(20) + bad), source="s.jsonl")
    assert not report.valid
    assert report.errors.examples[0].line == 21
