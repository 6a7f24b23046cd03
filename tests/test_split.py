"""The split: fraction parsing, stable hashing, empty small splits filled deterministically."""

from __future__ import annotations

import io

import pytest
import xxhash

from shared.domain.chatdata.issues import Code
from shared.domain.chatdata.options import ValidationOptions
from shared.domain.chatdata.prepare import SplitFiles
from shared.domain.chatdata.split import SplitFractions, assign, content_hash
from shared.domain.chatdata.validator import validate_stream
from tests.chats import valid_file


def test_content_hash_is_xxh3_64_of_the_line_with_its_ending_made_lf() -> None:
    # XXH3-64 is fixed by the xxHash specification (this is its value for the empty input): the
    # split cannot drift between machines or library versions without this failing.
    assert xxhash.xxh3_64_intdigest(b"") == 0x2D06800538D394C2
    assert content_hash(b"\n") == content_hash(b"\r\n") == content_hash(b"") == xxhash.xxh3_64_intdigest(b"\n")
    assert content_hash(b'{"a":1}\n') == content_hash(b'{"a":1}\r\n') == content_hash(b'{"a":1}')
    assert content_hash(b'{"a":1}') == xxhash.xxh3_64_intdigest(b'{"a":1}\n')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.9,0.05,0.05", (0.9, 0.05, 0.05)),
        ("90,5,5", (0.9, 0.05, 0.05)),
        ("80/10/10", (0.8, 0.1, 0.1)),
        ("1,0,0", (1.0, 0.0, 0.0)),
    ],
)
def test_fractions_parse(text: str, expected: tuple[float, float, float]) -> None:
    f = SplitFractions.parse(text)
    assert (f.train, f.validation, f.test) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["0.9,0.1", "0.5,0.5,0.5", "0,0.5,0.5", "-0.1,0.6,0.5", "a,b,c"])
def test_bad_fractions_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        SplitFractions.parse(text)


def test_assign_follows_thresholds() -> None:
    thresholds = SplitFractions(0.5, 0.25, 0.25).thresholds()
    assert [assign(x, thresholds) for x in (0, (1 << 63) - 1, 1 << 63, (3 << 62) - 1, 3 << 62, (1 << 64) - 1)] == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]


def test_large_file_split_follows_the_fractions() -> None:
    report = validate_stream(io.BytesIO(valid_file(4000)), source="big.jsonl")
    train, validation, test = report.split_counts
    assert train + validation + test == 4000
    assert abs(train / 4000 - 0.9) < 0.02 and abs(validation / 4000 - 0.05) < 0.015 and abs(test / 4000 - 0.05) < 0.015
    assert not report.warnings.totals[Code.SPLIT_FILLED]


def test_small_file_gets_non_empty_validation_and_test(tmp_path) -> None:
    for n in (12, 15, 20, 30):
        with SplitFiles(tmp_path / str(n)) as sink:
            report = validate_stream(
                io.BytesIO(valid_file(n)), ValidationOptions(min_train_rows=5), source="s.jsonl", sink=sink
            )
            paths = sink.commit()
        assert report.split_counts[1] >= 1 and report.split_counts[2] >= 1, (n, report.split_counts)
        counts = [len(paths[name].read_bytes().splitlines()) for name in ("train", "validation", "test")]
        assert counts == report.split_counts
        assert sum(counts) == n


def test_zero_fraction_split_stays_empty() -> None:
    options = ValidationOptions(fractions=SplitFractions(0.9, 0.1, 0.0))
    report = validate_stream(io.BytesIO(valid_file(30)), options, source="s.jsonl")
    assert report.split_counts[2] == 0
