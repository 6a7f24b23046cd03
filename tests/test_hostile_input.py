"""Hostile uploads get a clean verdict, never a traceback, with bounded memory."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import tracemalloc

import pytest

from shared.domain.chatdata.options import ValidationOptions
from shared.domain.chatdata.validator import validate_stream
from tests.chats import conversation, jsonl, valid_file


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
    assert peak < 2 * (1 << 20) + (5 << 20), f"peak {peak / 2**20:.1f} MiB while reading a 30 MiB line"


def test_30_mb_line_without_newline_at_end_of_file() -> None:
    data = valid_file(20) + b"x" * (30 << 20)
    report, peak = peak_bytes(data, max_line_bytes=1 << 20)
    assert codes(report) == {"line-too-long"}
    assert peak < 2 * (1 << 20) + (5 << 20)


@pytest.mark.parametrize(("depth", "code"), [(5_000, "json-too-deep"), (100_000, "line-too-complex")])
def test_deeply_nested_extra_field_is_a_clean_error(depth: int, code: str) -> None:
    nested = "[" * depth + "]" * depth
    bad = json.dumps(conversation(1))[:-1] + f', "extra": {nested}}}'
    report = validate_stream(io.BytesIO(valid_file(20) + bad.encode() + b"\n"), source="deep.jsonl")
    assert codes(report) == {code}
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


@pytest.mark.parametrize("document", [[conversation(i) for i in range(15)], conversation(1)], ids=["array", "object"])
@pytest.mark.parametrize("blank_lines", [0, 2])
def test_pretty_printed_json_is_one_file_level_error(document, blank_lines: int) -> None:
    """Was: one hint, then an invalid-json error for every line of the document."""
    data = b"\n" * blank_lines + json.dumps(document, indent=2).encode()
    report = validate_stream(io.BytesIO(data), source="array.jsonl")
    assert not report.valid
    assert [(f.line, f.code.value) for f in report.errors.examples] == [(0, "not-jsonl")]
    assert "pretty-printed JSON" in report.errors.examples[0].message
    assert f"line {blank_lines + 1}" in report.errors.examples[0].message
    assert report.stats.bytes_read == len(data)


def test_single_line_json_array_is_not_an_object() -> None:
    data = json.dumps([conversation(i) for i in range(15)]).encode() + b"\n"
    report = validate_stream(io.BytesIO(data), source="array.jsonl")
    assert codes(report) == {"not-an-object", "too-few-conversations"}
    assert "JSON array" in next(f.message for f in report.errors.examples if f.code.value == "not-an-object")


@pytest.mark.parametrize(
    ("encoding", "named"),
    [
        ("utf-16", "UTF-16"),
        ("utf-16-le", "UTF-16 (little-endian)"),
        ("utf-16-be", "UTF-16 (big-endian)"),
        ("utf-32", "UTF-32"),
    ],
)
def test_utf16_and_utf32_files_are_named_as_such(encoding: str, named: str) -> None:
    """Was: 40 invalid-json errors and never the word UTF-16."""
    data = valid_file(40).decode().encode(encoding)
    report = validate_stream(io.BytesIO(data), source="wide.jsonl")
    assert not report.valid
    assert [(f.line, f.code.value) for f in report.errors.examples] == [(0, "wrong-encoding")]
    assert named in report.errors.examples[0].message and "UTF-8" in report.errors.examples[0].message
    assert report.stats.bytes_read == len(data)


def test_cr_only_line_endings_are_named_as_such() -> None:
    """Was: "unexpected content after document" on the one line the whole file reads as."""
    data = valid_file(30).replace(b"\n", b"\r")
    report = validate_stream(io.BytesIO(data), source="mac.jsonl")
    assert [(f.line, f.code.value) for f in report.errors.examples] == [(0, "cr-line-endings")]
    assert "CR" in report.errors.examples[0].message


def test_cr_separated_lines_in_the_middle_get_a_hint() -> None:
    data = valid_file(20) + valid_file(3, start=50).replace(b"\n", b"\r") + b"\n" + valid_file(3, start=90)
    report = validate_stream(io.BytesIO(data), source="mixed.jsonl")
    [finding] = report.errors.examples
    assert (finding.line, finding.code.value) == (21, "invalid-json")
    assert "bare CR" in finding.message


def test_a_compressed_file_is_still_read_to_the_end() -> None:
    """Ingest hashes the bytes as the validator reads them: a rejected file must be read whole."""
    data = gzip.compress(valid_file(3000))
    assert len(data) > 1 << 16
    report = validate_stream(io.BytesIO(data), source="data.jsonl")
    assert report.stats.bytes_read == len(data)
    assert codes(report) == {"compressed-file"}


BAD_UTF8 = [b"caf\xe9", b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"ok\xf4\x90\x80\x80"]
"""Latin-1, a stray byte, an overlong NUL, an encoded surrogate, past U+10FFFF."""


def _row(**raw: bytes) -> bytes:
    """A valid conversation with some fields replaced by raw JSON bytes (which may be anything)."""
    fields = {
        "messages": b'[{"role":'
        + raw.get("role", b'"user"')
        + b',"content":'
        + raw.get("content", b'"hi there"')
        + b"},"
        b'{"role":"assistant","content":"hello"}]',
        "prompt": raw.get("prompt", b'"hi there"'),
        "prompt_id": raw.get("prompt_id", b'"p-1"'),
    }
    if "extra" in raw:
        fields["extra"] = raw["extra"]
    return b"{" + b",".join(b'"' + k.encode() + b'":' + v for k, v in fields.items()) + b"}\n"


@pytest.mark.parametrize("field", ["content", "prompt", "prompt_id", "role", "extra"])
@pytest.mark.parametrize("bad", BAD_UTF8)
def test_invalid_utf8_is_rejected_whichever_field_holds_it(field: str, bad: bytes) -> None:
    """Was: a UnicodeDecodeError traceback in content, and accepted (then trained on) in prompt."""
    report = validate_stream(io.BytesIO(valid_file(20) + _row(**{field: b'"' + bad + b'"'})), source="l1.jsonl")
    assert not report.valid
    assert [(f.line, f.code.value) for f in report.errors.examples] == [(21, "invalid-utf8")]


@pytest.mark.parametrize("field", ["content", "prompt", "prompt_id", "role", "extra"])
@pytest.mark.parametrize("number", [b"1" * 5000, b"-" + b"9" * 400, b"1e400"])
def test_out_of_range_numbers_are_rejected_whichever_field_holds_them(field: str, number: bytes) -> None:
    """Was: rejected in content, accepted in prompt."""
    report = validate_stream(io.BytesIO(valid_file(20) + _row(**{field: number})), source="n.jsonl")
    assert not report.valid
    assert [(f.line, f.code.value) for f in report.errors.examples] == [(21, "invalid-json")]


@pytest.mark.parametrize("field", ["content", "prompt", "prompt_id", "role", "extra"])
@pytest.mark.parametrize("depth", [998, 999, 1000, 1023, 1024, 1025, 100_000])
def test_deep_nesting_never_crashes_and_the_verdict_follows_the_json_rules(field: str, depth: int) -> None:
    """Was: RecursionError at depth >= 1000 inside prompt. JSON deeper than 1024 levels is an error
    anywhere; a legal deep value is judged like any other value of its field."""
    nested = b"[" * depth + b"]" * depth
    report = validate_stream(io.BytesIO(valid_file(20) + _row(**{field: nested})), source="d.jsonl")
    line_errors = {f.code.value for f in report.errors.examples if f.line == 21}
    if depth > 20_000:  # checks.MAX_CONTAINERS: refused before decoding
        assert line_errors == {"line-too-complex"}
    elif depth + (3 if field in ("content", "role") else 1) > 1024:  # orjson's limit counts every level
        assert line_errors == {"json-too-deep"}
    elif field == "content":
        assert line_errors == {"content-not-string"}
    elif field == "role":
        assert line_errors == {"role-invalid"}
    else:
        assert report.valid and not line_errors
        if field == "prompt_id":
            assert "prompt-id-invalid" in {f.code.value for f in report.warnings.examples}


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], 17, True, 1.5])
def test_a_prompt_id_that_is_not_a_string_is_left_out_of_the_prepared_rows(tmp_path, value) -> None:
    """Was: an object prompt_id copied into the prepared rows (a column of mixed types breaks loaders)."""
    from shared.domain.chatdata.prepare import SplitFiles
    from shared.domain.chatdata.split import SplitFractions

    data = jsonl([conversation(i, prompt_id=value if i == 3 else f"id-{i}") for i in range(12)])
    options = ValidationOptions(fractions=SplitFractions(1.0, 0.0, 0.0))
    with SplitFiles(tmp_path) as sink:
        report = validate_stream(io.BytesIO(data), options, source="p.jsonl", sink=sink)
        paths = sink.commit()
    assert report.valid
    [warning] = [f for f in report.warnings.examples if f.code.value == "prompt-id-invalid"]
    assert (warning.line, warning.path) == (4, "prompt_id")
    rows = [json.loads(x) for x in paths["train"].read_bytes().splitlines()]
    assert len(rows) == 12
    assert {type(r.get("prompt_id")) for r in rows} <= {str, type(None)}
    assert sum("prompt_id" not in r for r in rows) == 1


def test_hostile_keys_give_bounded_findings() -> None:
    key = "k" * 500_000
    bad = json.dumps({**conversation(500), key: 1}).encode() + b"\n"
    report = validate_stream(io.BytesIO(valid_file(20) + bad), source="k.jsonl")
    assert report.valid
    [warning] = [f for f in report.warnings.examples if f.code.value == "unknown-key"]
    assert len(warning.path) <= 120 and len(warning.message) <= 400


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


@pytest.mark.parametrize("system", [False, True])
def test_long_conversations_take_the_same_rules_as_short_ones(system: bool) -> None:
    """Role sequences past the fast path's table are checked by the same rule."""
    long_ok = conversation(500, turns=90, system=system)
    swapped = conversation(501, turns=90, system=system)
    swapped["messages"][-3]["role"], swapped["messages"][-4]["role"] = "user", "assistant"
    report = validate_stream(io.BytesIO(valid_file(20) + jsonl([long_ok, swapped])), source="long.jsonl")
    assert report.valid
    codes_at = {(f.line, f.code.value) for f in report.warnings.examples if f.code.value != "too-long"}
    assert {(line, code) for line, code in codes_at if line > 20} == {(22, "turns-not-alternating")}
    assert report.conversations == 22
