"""Property-based tests: valid data never errors; both validation paths agree; the split partitions."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.chatdata.issues import Code
from shared.domain.chatdata.options import ValidationOptions
from shared.domain.chatdata.prepare import SplitFiles
from shared.domain.chatdata.split import SPLITS, SplitFractions
from shared.domain.chatdata.validator import validate_stream

text = st.text(min_size=1, max_size=60).filter(lambda s: not s.isspace())
any_text = st.text(max_size=20)


@st.composite
def valid_conversations(draw) -> dict:
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(any_text)})
    for _ in range(draw(st.integers(1, 4))):
        messages += [{"role": "user", "content": draw(text)}, {"role": "assistant", "content": draw(text)}]
    row: dict = {"messages": messages}
    if draw(st.booleans()):
        row["prompt"] = messages[-2]["content"]
    if draw(st.booleans()):
        row["prompt_id"] = draw(st.text(max_size=12))
    return row


@st.composite
def messy_conversations(draw) -> dict:
    roles = st.sampled_from(["system", "user", "assistant", "tool", "", None, 3])
    contents = st.one_of(any_text, st.just("   "), st.none(), st.integers(), st.lists(st.integers(), max_size=2))
    messages = []
    for _ in range(draw(st.integers(0, 5))):
        message = {}
        role, content = draw(roles), draw(contents)
        if role is not None:
            message["role"] = role
        if content is not None:
            message["content"] = content
        messages.append(
            draw(st.one_of(st.just(message), st.just("plain string"))) if draw(st.integers(0, 9)) == 0 else message
        )
    return {"messages": messages}


def encode(row: dict, ensure_ascii: bool) -> bytes:
    return json.dumps(row, ensure_ascii=ensure_ascii).encode() + b"\n"


def only_train(**kw: object) -> ValidationOptions:
    return ValidationOptions(fractions=SplitFractions(1.0, 0.0, 0.0), min_train_rows=1, **kw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_conversations(), st.booleans(), st.booleans())
def test_a_valid_conversation_never_yields_an_error(row: dict, ensure_ascii: bool, crlf: bool) -> None:
    data = encode(row, ensure_ascii)
    if crlf:
        data = data[:-1] + b"\r\n"
    report = validate_stream(io.BytesIO(data), only_train(), source="p.jsonl")
    assert report.valid, report.as_dict()["errors"]
    assert not report.errors
    assert report.conversations == 1


def _view(report, ignore: set[Code]) -> tuple:
    errors = {(f.line, f.code, f.path) for f in report.errors.examples}
    warnings = {(f.line, f.code, f.path) for f in report.warnings.examples if f.code not in ignore}
    return report.valid, report.conversations, errors, warnings


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(valid_conversations(), messy_conversations()), st.booleans())
def test_fast_and_careful_paths_agree(row: dict, strict: bool) -> None:
    """An unknown key forces the careful path; apart from that warning the verdict must not change."""
    fast = validate_stream(io.BytesIO(encode(row, True)), only_train(strict=strict), source="p.jsonl")
    careful = validate_stream(
        io.BytesIO(encode({**row, "zz_extra": 1}, True)), only_train(strict=strict), source="p.jsonl"
    )
    assert _view(fast, set()) == _view(careful, {Code.UNKNOWN_KEY})


def _json_text(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


# Raw JSON values, well-formed or not: what a hostile or broken upload can hold in any field.
hostile_values = st.one_of(
    st.text(max_size=8).map(_json_text),
    st.sampled_from(["user", "assistant", "system", "", "  ", "tool"]).map(_json_text),
    st.builds(
        lambda a, bad, b: b'"' + a.encode() + bad + b.encode() + b'"',
        st.text(max_size=4),
        st.sampled_from([b"\xe9", b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]),
        st.text(max_size=4),
    ),
    st.sampled_from([b'"\\ud800"', b'"\\udc00x"', b'"\\ud83d\\ude00"', b'"a\\u0000b"', b'"\\x41"', b'"tab\tin"']),
    st.integers(1, 6000).map(lambda n: b"9" * n),
    st.sampled_from([b"1e400", b"-1e-400", b"0", b"-0", b"1.5", b"NaN", b"true", b"null", b"{}", b"[]"]),
    st.integers(1, 1100).map(lambda d: b"[" * d + b"]" * d),
    st.integers(1, 1100).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
    st.sampled_from([b'{"role":"user"}', b'[{"role":"user","content":"x"}]']),
)


@st.composite
def hostile_lines(draw) -> bytes:
    """A conversation whose fields (and some keys) may each be replaced by a hostile raw value."""

    def value(normal: bytes) -> bytes:
        return draw(hostile_values) if draw(st.integers(0, 3)) == 0 else normal

    messages = []
    for index in range(draw(st.integers(0, 4))):
        role = b'"user"' if index % 2 == 0 else b'"assistant"'
        parts = [b'"role":' + value(role), b'"content":' + value(b'"some text"')]
        if draw(st.integers(0, 6)) == 0:
            parts.append(b'"role":' + value(role))  # a duplicate key: the last one counts
        draw(st.randoms()).shuffle(parts)  # keys in any order (the role tag need not come first)
        messages.append(b"{" + b",".join(parts) + b"}")
    fields = [b'"messages":' + (value(b"[" + b",".join(messages) + b"]"))]
    if draw(st.booleans()):
        fields.append(b'"prompt":' + value(b'"some text"'))
    if draw(st.booleans()):
        fields.append(b'"prompt_id":' + value(b'"id-1"'))
    if draw(st.integers(0, 5)) == 0:
        fields.append(draw(st.sampled_from([b'"k\xe9y"', b'"\\ud800"', b'"ok"'])) + b":" + value(b"1"))
    draw(st.randoms()).shuffle(fields)
    return b"{" + b",".join(fields) + b"}" + draw(st.sampled_from([b"\n", b"\r\n", b" \n", b""]))


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_lines(), st.booleans())
def test_fast_and_careful_paths_agree_on_hostile_bytes(line: bytes, strict: bool) -> None:
    """The verdict must not depend on which path reads a line, nor on which field holds a fault.

    An extra key forces the careful path; orjson is the reference for what JSON is.
    """
    forced = b'{"zz_extra":1,' + line[1:]
    fast = validate_stream(io.BytesIO(line), only_train(strict=strict), source="h.jsonl")
    careful = validate_stream(io.BytesIO(forced), only_train(strict=strict), source="h.jsonl")
    assert _view(fast, {Code.UNKNOWN_KEY}) == _view(careful, {Code.UNKNOWN_KEY})
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        assert not fast.valid


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(valid_conversations(), min_size=1, max_size=40),
    st.integers(0, 5),
    st.sampled_from(["0.9,0.05,0.05", "0.5,0.25,0.25", "1,0,0"]),
)
def test_split_is_deterministic_and_partitions_the_input(
    tmp_path_factory, rows: list[dict], dups: int, fractions: str
) -> None:
    rows = rows + rows[:dups]
    data = b"".join(encode(r, False) for r in rows)
    options = ValidationOptions(fractions=SplitFractions.parse(fractions), min_train_rows=1)
    outputs = []
    for _ in range(2):
        out = tmp_path_factory.mktemp("split")
        with SplitFiles(out) as sink:
            report = validate_stream(io.BytesIO(data), options, source="p.jsonl", sink=sink)
            paths = sink.commit()
        outputs.append({name: Path(paths[name]).read_bytes() for name in SPLITS})
    assert outputs[0] == outputs[1], "same input must give byte-identical outputs"
    written = [json.loads(x) for name in SPLITS for x in outputs[0][name].splitlines()]
    expected = [
        {"messages": r["messages"], **({"prompt_id": r["prompt_id"]} if "prompt_id" in r else {})} for r in rows
    ]
    canon = lambda objs: Counter(json.dumps(o, sort_keys=True) for o in objs)  # noqa: E731
    assert canon(written) == canon(expected), "no row lost, none duplicated"
    assert [len(outputs[0][n].splitlines()) for n in SPLITS] == report.split_counts
