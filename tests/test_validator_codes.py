"""Every error and warning code, with the exact line number and JSON path it reports."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from shared.domain.chatdata.issues import FILE_LEVEL, Code
from shared.domain.chatdata.options import ValidationOptions
from shared.domain.chatdata.validator import validate_stream
from tests.chats import conversation, jsonl, line, valid_file

GOOD = 40
BAD_LINE = GOOD + 2  # 40 good lines, one blank line (still counted), then the line under test


def user(text: str = "hi") -> dict:
    return {"role": "user", "content": text}


def assistant(text: str = "hello") -> dict:
    return {"role": "assistant", "content": text}


def system(text: str = "be nice") -> dict:
    return {"role": "system", "content": text}


def with_bad(bad: bytes, **options: object):
    data = valid_file(GOOD) + b"\n" + bad + valid_file(3, start=1000)
    return validate_stream(io.BytesIO(data), ValidationOptions(**options), source="test.jsonl")


def findings(report, severity: str) -> set[tuple[int, str, str]]:
    log = report.errors if severity == "error" else report.warnings
    return {(f.line, f.code.value, f.path) for f in log.examples}


ERROR_CASES = [
    ("invalid-utf8", b'{"messages": "\xff\xfe"}\n', Code.INVALID_UTF8, "$"),
    ("nan", b'{"messages": [], "x": NaN}\n', Code.INVALID_JSON, "$"),
    ("infinity", b'{"messages": [], "x": -Infinity}\n', Code.INVALID_JSON, "$"),
    ("trailing garbage", line({"messages": [user(), assistant()]})[:-1] + b" trailing\n", Code.INVALID_JSON, "$"),
    ("truncated", line({"messages": [user(), assistant()]})[:25] + b"\n", Code.INVALID_JSON, "$"),
    ("not an object: list", b"[1, 2]\n", Code.NOT_AN_OBJECT, "$"),
    ("not an object: string", b'"just text"\n', Code.NOT_AN_OBJECT, "$"),
    ("messages missing", line({"prompt": "x"}), Code.MESSAGES_MISSING, "messages"),
    ("messages not list", line({"messages": {"role": "user"}}), Code.MESSAGES_NOT_LIST, "messages"),
    ("one message", line({"messages": [user()]}), Code.TOO_FEW_MESSAGES, "messages"),
    ("no messages", line({"messages": []}), Code.TOO_FEW_MESSAGES, "messages"),
    ("message not object", line({"messages": [user(), "hello"]}), Code.MESSAGE_NOT_OBJECT, "messages[1]"),
    ("role missing", line({"messages": [user(), {"content": "x"}]}), Code.ROLE_MISSING, "messages[1].role"),
    (
        "role invalid",
        line({"messages": [user(), assistant(), user(), {"role": "tool", "content": "x"}]}),
        Code.ROLE_INVALID,
        "messages[3].role",
    ),
    (
        "role not string",
        line({"messages": [{"role": 7, "content": "x"}, assistant()]}),
        Code.ROLE_INVALID,
        "messages[0].role",
    ),
    (
        "content missing",
        line({"messages": [{"role": "user"}, assistant()]}),
        Code.CONTENT_MISSING,
        "messages[0].content",
    ),
    (
        "content not string",
        line({"messages": [user(), {"role": "assistant", "content": ["a"]}]}),
        Code.CONTENT_NOT_STRING,
        "messages[1].content",
    ),
    ("content empty", line({"messages": [user(""), assistant()]}), Code.CONTENT_EMPTY, "messages[0].content"),
    ("content whitespace", line({"messages": [user(), assistant(" \n\t")]}), Code.CONTENT_EMPTY, "messages[1].content"),
    ("no assistant", line({"messages": [user(), user("again")]}), Code.NO_ASSISTANT, "messages"),
    (
        "system not first",
        line({"messages": [user(), system(), assistant()]}),
        Code.SYSTEM_NOT_FIRST,
        "messages[1].role",
    ),
]


@pytest.mark.parametrize(("bad", "code", "path"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_each_error_names_line_code_and_path(bad: bytes, code: Code, path: str) -> None:
    report = with_bad(bad)
    assert not report.valid
    assert (BAD_LINE, code.value, path) in findings(report, "error")
    assert report.errors.totals[code] == 1
    assert report.conversations == GOOD + 3  # the good lines around it are still counted


WARNING_CASES = [
    (
        "two user turns",
        line({"messages": [user(), user("more"), assistant()]}),
        {},
        Code.TURNS_NOT_ALTERNATING,
        "messages[1].role",
    ),
    (
        "assistant first",
        line({"messages": [system(), assistant(), user(), assistant()]}),
        {},
        Code.TURNS_NOT_ALTERNATING,
        "messages[1].role",
    ),
    (
        "last not assistant",
        line({"messages": [user(), assistant(), user("bye")]}),
        {},
        Code.LAST_NOT_ASSISTANT,
        "messages[2].role",
    ),
    ("unknown top-level key", line({**conversation(77), "source": "web"}), {}, Code.UNKNOWN_KEY, "source"),
    (
        "unknown message key",
        line({"messages": [{**user(), "name": "bob"}, assistant()]}),
        {},
        Code.UNKNOWN_KEY,
        "messages[0].name",
    ),
    (
        "too long",
        line({"messages": [user("word " * 400), assistant()]}),
        {"max_seq_tokens": 300},
        Code.TOO_LONG,
        "messages",
    ),
    ("duplicate conversation", valid_file(1, start=5), {}, Code.DUPLICATE_CONVERSATION, "messages"),
    (
        "duplicate prompt_id",
        line({**conversation(900), "prompt_id": "id-7"}),
        {},
        Code.DUPLICATE_PROMPT_ID,
        "prompt_id",
    ),
    ("crlf", line(conversation(901))[:-1] + b"\r\n", {}, Code.CRLF, "$"),
]


@pytest.mark.parametrize(
    ("bad", "options", "code", "path"), [c[1:] for c in WARNING_CASES], ids=[c[0] for c in WARNING_CASES]
)
def test_each_warning_names_line_code_and_path(bad: bytes, options: dict, code: Code, path: str) -> None:
    report = with_bad(bad, **options)
    assert report.valid, report.as_dict()["errors"]
    assert (BAD_LINE, code.value, path) in findings(report, "warning")
    assert not report.errors
    assert report.conversations == GOOD + 4


def test_duplicate_message_points_at_the_first_line() -> None:
    report = with_bad(valid_file(1, start=5))
    [dup] = [f for f in report.warnings.examples if f.code is Code.DUPLICATE_CONVERSATION]
    assert "line 6" in dup.message


def test_empty_system_prompt_is_accepted_but_empty_user_turn_is_not() -> None:
    ok = with_bad(line({"messages": [system(""), user(), assistant()]}))
    assert ok.valid
    assert set(ok.warnings.totals) <= {Code.SPLIT_FILLED}
    bad = with_bad(line({"messages": [system(""), user("   "), assistant()]}))
    assert (BAD_LINE, "content-empty", "messages[1].content") in findings(bad, "error")


def test_strict_mode_makes_non_alternating_turns_an_error() -> None:
    bad = line({"messages": [user(), user("more"), assistant()]})
    report = with_bad(bad, strict=True)
    assert not report.valid
    assert (BAD_LINE, "turns-not-alternating", "messages[1].role") in findings(report, "error")


def test_several_problems_in_one_line_are_all_reported() -> None:
    bad = line({"messages": [{"role": "bot", "content": "x"}, {"role": "assistant"}], "extra": 1})
    report = with_bad(bad)
    assert {
        (BAD_LINE, "role-invalid", "messages[0].role"),
        (BAD_LINE, "content-missing", "messages[1].content"),
    } <= findings(report, "error")
    assert (BAD_LINE, "unknown-key", "extra") in findings(report, "warning")


def test_bom_is_removed_and_reported_on_line_one() -> None:
    report = validate_stream(io.BytesIO(b"\xef\xbb\xbf" + valid_file(20)), source="bom.jsonl")
    assert report.valid
    assert (1, "bom", "$") in findings(report, "warning")
    assert report.conversations == 20


@pytest.mark.parametrize("data", [b"", b"\n", b"\n  \n\r\n\t\n"], ids=["empty", "one newline", "only blanks"])
def test_empty_file_is_rejected(data: bytes) -> None:
    report = validate_stream(io.BytesIO(data), source="empty.jsonl")
    assert not report.valid
    assert findings(report, "error") == {(FILE_LEVEL, "empty-file", "$")}


def test_too_few_training_rows_is_a_file_level_error() -> None:
    report = validate_stream(io.BytesIO(valid_file(6)), source="small.jsonl")
    assert not report.valid
    assert findings(report, "error") == {(FILE_LEVEL, "too-few-conversations", "$")}
    message = report.errors.examples[0].message
    assert "at least 10 training rows" in message


def test_min_train_rows_is_configurable() -> None:
    report = validate_stream(io.BytesIO(valid_file(6)), ValidationOptions(min_train_rows=3), source="small.jsonl")
    assert report.valid


def test_line_numbers_count_blank_lines() -> None:
    data = b"\n\n" + valid_file(20) + b"\n\n\n" + b"not json\n"
    report = validate_stream(io.BytesIO(data), source="x.jsonl")
    assert findings(report, "error") == {(26, "invalid-json", "$")}
    assert report.stats.blank_lines == 5
    assert report.stats.lines == 26


def test_line_too_long_is_rejected_and_the_rest_still_read() -> None:
    data = valid_file(20) + line({"messages": [user("x" * 5000), assistant()]}) + valid_file(3, start=50)
    report = validate_stream(io.BytesIO(data), ValidationOptions(max_line_bytes=1000), source="long.jsonl")
    assert findings(report, "error") == {(21, "line-too-long", "$")}
    assert report.conversations == 23


def test_examples_are_capped_per_code_but_totals_are_exact() -> None:
    data = valid_file(20) + b"{oops\n" * 500 + b'"str"\n' * 30
    report = validate_stream(io.BytesIO(data), ValidationOptions(examples_per_code=5), source="many.jsonl")
    assert report.errors.totals[Code.INVALID_JSON] == 500
    assert report.errors.totals[Code.NOT_AN_OBJECT] == 30
    shown = [f for f in report.errors.examples if f.code is Code.INVALID_JSON]
    assert [f.line for f in shown] == [21, 22, 23, 24, 25]
    d = report.as_dict()
    assert d["error_totals"] == {"invalid-json": 500, "not-an-object": 30}
    assert len(d["errors"]) == 10


def test_duplicate_check_limit_is_reported() -> None:
    data = valid_file(30)
    report = validate_stream(io.BytesIO(data), ValidationOptions(duplicate_check_limit=10), source="x.jsonl")
    assert (FILE_LEVEL, "duplicate-check-limited", "$") in findings(report, "warning")


def test_compressed_upload_gets_one_clear_error() -> None:
    report = validate_stream(io.BytesIO(gzip.compress(valid_file(50))), source="data.jsonl")
    assert not report.valid
    assert findings(report, "error") == {(0, "compressed-file", "$")}
    assert "gzip" in report.errors.examples[0].message


def test_stats_summarise_accepted_conversations() -> None:
    objs = [conversation(i, turns=t, system=s) for i, (t, s) in enumerate([(1, False), (2, True), (3, False)] * 5)]
    report = validate_stream(io.BytesIO(jsonl(objs)), source="s.jsonl")
    stats = report.as_dict()["stats"]
    assert stats["messages_per_conversation"] == {"min": 2, "median": 5, "max": 6}
    assert stats["roles"] == {"system": 5, "user": 30, "assistant": 30}
    assert stats["bytes_read"] == len(jsonl(objs))
    tokens = stats["estimated_tokens"]
    assert tokens["min"] <= tokens["median"] <= tokens["p95"] <= tokens["max"]
    # the estimate is bytes of the line without prompt and prompt_id, over 4
    smallest = min(len(line(o)) - len(json.dumps(o["prompt"])) - len(json.dumps(o["prompt_id"])) for o in objs)
    assert abs(tokens["min"] - smallest / 4) < 12
