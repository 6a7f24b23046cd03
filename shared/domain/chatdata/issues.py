"""Findings about an upload: stable codes, and a log that caps examples but keeps exact totals."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum

FILE_LEVEL = 0
"""Line number used for findings about the whole file rather than one line."""
MESSAGE_MAX = 400
PATH_MAX = 120
"""Findings quote user data; these caps keep every report under a fixed size."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


class Code(str, Enum):
    """Stable finding codes. Renaming one breaks users' tooling, so only ever add."""

    # errors
    EMPTY_FILE = "empty-file"
    COMPRESSED_FILE = "compressed-file"
    WRONG_ENCODING = "wrong-encoding"
    CR_LINE_ENDINGS = "cr-line-endings"
    NOT_JSONL = "not-jsonl"
    INVALID_UTF8 = "invalid-utf8"
    INVALID_JSON = "invalid-json"
    JSON_TOO_DEEP = "json-too-deep"
    LINE_TOO_LONG = "line-too-long"
    LINE_TOO_COMPLEX = "line-too-complex"
    NOT_AN_OBJECT = "not-an-object"
    MESSAGES_MISSING = "messages-missing"
    MESSAGES_NOT_LIST = "messages-not-list"
    TOO_FEW_MESSAGES = "too-few-messages"
    MESSAGE_NOT_OBJECT = "message-not-object"
    ROLE_MISSING = "role-missing"
    ROLE_INVALID = "role-invalid"
    CONTENT_MISSING = "content-missing"
    CONTENT_NOT_STRING = "content-not-string"
    CONTENT_EMPTY = "content-empty"
    NO_ASSISTANT = "no-assistant"
    SYSTEM_NOT_FIRST = "system-not-first"
    TOO_FEW_CONVERSATIONS = "too-few-conversations"
    # warnings (TURNS_NOT_ALTERNATING is an error in strict mode)
    TURNS_NOT_ALTERNATING = "turns-not-alternating"
    LAST_NOT_ASSISTANT = "last-not-assistant"
    DUPLICATE_CONVERSATION = "duplicate-conversation"
    DUPLICATE_PROMPT_ID = "duplicate-prompt-id"
    PROMPT_ID_INVALID = "prompt-id-invalid"
    UNKNOWN_KEY = "unknown-key"
    TOO_LONG = "too-long"
    BOM = "bom"
    CRLF = "crlf"
    DUPLICATE_CHECK_LIMITED = "duplicate-check-limited"
    SPLIT_FILLED = "split-filled"
    OTHER_LAYOUT = "other-layout"


@dataclass(frozen=True, slots=True)
class Finding:
    line: int
    code: Code
    path: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "code": self.code.value, "path": self.path, "message": self.message}


class FindingLog:
    """Keeps the first `examples_per_code` findings of each code and an exact count of all.

    A 1 GB file with a million bad lines must still give a report a person can read.
    """

    def __init__(self, examples_per_code: int) -> None:
        self._limit = examples_per_code
        self.totals: Counter[Code] = Counter()
        self.examples: list[Finding] = []

    def add(self, finding: Finding) -> None:
        self.totals[finding.code] += 1
        if self.totals[finding.code] <= self._limit:
            if len(finding.message) > MESSAGE_MAX or len(finding.path) > PATH_MAX:
                finding = Finding(
                    finding.line, finding.code, _cut(finding.path, PATH_MAX), _cut(finding.message, MESSAGE_MAX)
                )
            self.examples.append(finding)

    def count_more(self, more: Counter[Code]) -> None:
        """Findings that were counted but not kept (see checks.LineFindings)."""
        self.totals.update(more)

    def __bool__(self) -> bool:
        return bool(self.totals)

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    def sorted_examples(self) -> list[Finding]:
        return sorted(self.examples, key=lambda f: (f.line, f.path, f.code.value))


class LineRanges:
    """Line numbers as compact ranges ("3-9"): an exact count, and only the first `limit` ranges kept.

    A million bad lines alternating with good ones must still give a report of bounded size.
    """

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self.count = 0
        self.range_count = 0
        self.ranges: list[tuple[int, int]] = []
        self._last = -1

    def add(self, line: int) -> None:
        """Add a line number; numbers must come in increasing order."""
        self.count += 1
        if line == self._last + 1 and self.range_count:
            if len(self.ranges) == self.range_count:
                self.ranges[-1] = (self.ranges[-1][0], line)
        else:
            self.range_count += 1
            if len(self.ranges) < self.limit:
                self.ranges.append((line, line))
        self._last = line

    def __bool__(self) -> bool:
        return self.count > 0

    def as_text(self) -> list[str]:
        """The kept ranges as text, e.g. ["2", "4-7"]; `omitted` says how many more there are."""
        return [str(a) if a == b else f"{a}-{b}" for a, b in self.ranges]

    @property
    def omitted(self) -> int:
        return self.range_count - len(self.ranges)
