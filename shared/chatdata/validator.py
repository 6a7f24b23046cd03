"""Stream-validate a JSONL upload in one pass with bounded memory, optionally writing the split.

Each line first tries the fast path: msgspec decodes it straight into the typed schema in C,
and one comprehension checks the role order and empty turns. A line the fast path cannot
accept cleanly is re-read by the careful path (`checks.py`), which names every problem.
Both paths end in `_Run.accept`, so an accepted line is booked the same way either way.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from typing import Any, BinaryIO, Protocol

import msgspec

from .checks import check_conversation, decode_line
from .issues import FILE_LEVEL, Code, Finding, FindingLog
from .lines import UTF8_BOM, LineReader, Oversized, sniff_compression
from .options import ValidationOptions
from .report import Report
from .schema import CLEAN_ROLE_SEQUENCE, Message, conversation_decoder, encoded_size, prepared_row
from .split import SPLITS, content_hash
from .stats import Stats, estimate_tokens

_ROLE_LETTER = {"system": "s", "user": "u", "assistant": "a"}
_FILE_LEVEL_ERRORS = frozenset({Code.EMPTY_FILE, Code.COMPRESSED_FILE, Code.TOO_FEW_CONVERSATIONS})


class RowSink(Protocol):
    """Receives normalised rows; index 0/1/2 is train/validation/test."""

    def write(self, split: int, row: bytes) -> None: ...

    def move_train_rows(self, moves: dict[int, int]) -> None:
        """Move the n-th written train row to another split (only ever a row or two)."""


class _Run:
    """Mutable state of one validation pass."""

    def __init__(self, options: ValidationOptions, sink: RowSink | None) -> None:
        self.options = options
        self.sink = sink
        self.errors = FindingLog(options.examples_per_code)
        self.warnings = FindingLog(options.examples_per_code)
        self.stats = Stats()
        self.split_counts = [0, 0, 0]
        self.train_end, self.validation_end = options.fractions.thresholds()
        self.seen_content: dict[int, int] = {}
        self.seen_prompt_ids: dict[int, int] = {}
        self.dedup_full = False
        # The two train rows with the highest hashes (closest to the validation range): a small
        # file whose validation or test split came out empty borrows them (see `_fill_empty_splits`).
        self.train_top: list[tuple[int, int, int]] = [(-1, -1, 0), (-1, -1, 0)]
        self.dedup_limit = options.duplicate_check_limit
        self.max_tokens = options.max_seq_tokens
        self.rejected_lines = 0
        self.dropped: list[tuple[int, int]] = []
        # Role counts of the fast path follow from its message counts (s?(ua)+), so only the
        # careful path counts roles one by one; `_finish` adds the two.
        self.slow_messages_hist: dict[int, int] = {}
        self.slow_roles = {"system": 0, "user": 0, "assistant": 0}
        self.crlf_lines = 0
        self.first_crlf = 0

    def error(self, line: int, code: Code, path: str, message: str) -> None:
        self.errors.add(Finding(line, code, path, message))

    def warning(self, line: int, code: Code, path: str, message: str) -> None:
        self.warnings.add(Finding(line, code, path, message))

    def reject_line(self, number: int) -> None:
        self.rejected_lines += 1
        if self.dropped and self.dropped[-1][1] == number - 1:
            self.dropped[-1] = (self.dropped[-1][0], number)
        else:
            self.dropped.append((number, number))

    def _first_seen(self, seen: dict[int, int], key: int, number: int) -> int:
        """The line that had this key first (this one if new), remembering up to the configured limit."""
        if len(seen) < self.dedup_limit:
            return seen.setdefault(key, number)
        first = seen.get(key)
        if first is None:
            self.dedup_full = True
            return number
        return first

    def accept(self, number: int, line: bytes, size: int, messages: list[Message], prompt_id: Any) -> None:
        """Book a conversation with no errors: duplicates, length, stats, split, output row.

        This runs for every accepted line, so it avoids needless calls (see bench/validate_speed.py).
        """
        digest = content_hash(line)
        seen = self.seen_content
        first = (
            seen.setdefault(digest, number) if len(seen) < self.dedup_limit else self._first_seen(seen, digest, number)
        )
        if first != number:
            self.warning(number, Code.DUPLICATE_CONVERSATION, "messages", f"same messages as line {first}")
        if prompt_id is not None:
            first = self._first_seen(
                self.seen_prompt_ids, hash(prompt_id if isinstance(prompt_id, str) else repr(prompt_id)), number
            )
            if first != number:
                self.warning(
                    number, Code.DUPLICATE_PROMPT_ID, "prompt_id", f"prompt_id {prompt_id!r} also on line {first}"
                )
        tokens = estimate_tokens(size)
        if tokens > self.max_tokens:
            self.warning(
                number,
                Code.TOO_LONG,
                "messages",
                f"about {tokens} tokens, over the max sequence length {self.max_tokens}; it will be truncated",
            )
        stats = self.stats
        stats.messages_hist[len(messages)] = stats.messages_hist.get(len(messages), 0) + 1
        stats.tokens_hist[tokens] = stats.tokens_hist.get(tokens, 0) + 1
        split = 0 if digest < self.train_end else 1 if digest < self.validation_end else 2
        if split == 0 and digest > self.train_top[0][0]:
            heapq.heapreplace(self.train_top, (digest, self.split_counts[0], number))
        self.split_counts[split] += 1
        if self.sink is not None:
            self.sink.write(split, prepared_row(messages, prompt_id))

    def careful(self, number: int, data: bytes) -> None:
        """The slow path: a line the fast path could not accept cleanly."""
        if type(data) is Oversized:
            self.error(
                number,
                Code.LINE_TOO_LONG,
                "$",
                f"line is {data.length} bytes, over the {self.options.max_line_bytes}-byte limit",
            )
            self.reject_line(number)
            return
        if data.isspace():
            self.stats.blank_lines += 1
            return
        if data.endswith(b"\r\n"):
            self.crlf_lines += 1
            self.first_crlf = self.first_crlf or number
        obj, problem = decode_line(data)
        if problem is not None:
            self.error(number, problem[0], "$", problem[1])
            self.reject_line(number)
            return
        verdict = check_conversation(obj, strict=self.options.strict)
        for code, path, message in verdict.warnings:
            self.warning(number, code, path, message)
        if verdict.messages is None:
            for code, path, message in verdict.errors:
                self.error(number, code, path, message)
            self.reject_line(number)
            return
        self.slow_messages_hist[len(verdict.messages)] = self.slow_messages_hist.get(len(verdict.messages), 0) + 1
        for message in verdict.messages:
            self.slow_roles[message.role] += 1
        size = len(data) - encoded_size(obj.get("prompt")) - encoded_size(verdict.prompt_id)
        self.accept(number, data, size, verdict.messages, verdict.prompt_id)


def validate_stream(
    stream: BinaryIO,
    options: ValidationOptions | None = None,
    *,
    source: str,
    sink: RowSink | None = None,
) -> Report:
    """Validate (and with a sink, normalise and split) a JSONL byte stream in one pass."""
    options = options or ValidationOptions()
    run = _Run(options, sink)
    reader = LineReader(stream, options.max_line_bytes)
    lines = iter(reader)
    first = next(lines, None)
    if first is not None and _first_line_ok(run, first[1]):
        _fast_loop(run, itertools.chain([(1, _without_bom(first[1]))], lines))
    lines.close()
    run.stats.bytes_read = reader.bytes_read
    return _finish(run, source)


def _fast_loop(run: _Run, lines: Iterable[tuple[int, bytes | Oversized]]) -> None:
    """The hot loop. Every statement here runs once per line: keep it lean (bench/validate_speed.py)."""
    accept, careful = run.accept, run.careful
    decode = conversation_decoder.decode
    clean = CLEAN_ROLE_SEQUENCE.fullmatch
    letter = _ROLE_LETTER
    # An Oversized stand-in is not bytes, so msgspec raises TypeError and the careful path takes it.
    bad_line = (msgspec.ValidationError, msgspec.DecodeError, TypeError)
    crlf_lines = number = 0
    for number, data in lines:
        try:
            conversation = decode(data)
        except bad_line:
            careful(number, data)
            continue
        messages = conversation.messages
        # "x" marks an empty user/assistant turn (an empty system prompt is allowed: careful path).
        if clean("".join([letter[m.role] if m.content and not m.content.isspace() else "x" for m in messages])) is None:
            careful(number, data)
            continue
        if data.endswith(b"\r\n"):
            crlf_lines += 1
            run.first_crlf = run.first_crlf or number
        prompt_id = conversation.prompt_id
        size = len(data) - len(conversation.prompt) - (len(prompt_id) + 2 if prompt_id is not None else 0)
        accept(number, data, size, messages, prompt_id)
    run.crlf_lines += crlf_lines
    run.stats.lines = max(number, 1)


def _without_bom(data: bytes | Oversized) -> bytes | Oversized:
    return data[len(UTF8_BOM) :] if isinstance(data, bytes) and data.startswith(UTF8_BOM) else data


def _first_line_ok(run: _Run, data: bytes | Oversized) -> bool:
    """Reject compressed files outright (nothing after their first bytes is JSONL); note a BOM."""
    run.stats.lines = 1
    head = data[:8] if isinstance(data, bytes) else b""
    kind = sniff_compression(head)
    if kind is not None:
        run.reject_line(1)
        run.error(
            1, Code.COMPRESSED_FILE, "$", f"the file is {kind}-compressed; decompress it and upload the plain .jsonl"
        )
        return False
    if head.startswith(UTF8_BOM):
        run.warning(1, Code.BOM, "$", "the file starts with a UTF-8 byte order mark; it is removed")
    return True


def _count_roles(run: _Run) -> None:
    roles = run.stats.roles
    roles.update(run.slow_roles)
    for count, conversations in run.stats.messages_hist.items():
        fast = conversations - run.slow_messages_hist.get(count, 0)
        roles["user"] += fast * (count >> 1)
        roles["assistant"] += fast * (count >> 1)
        roles["system"] += fast * (count & 1)


def _fill_empty_splits(run: _Run) -> None:
    """Give an empty validation/test split (with a fraction > 0) one train row, deterministically.

    A hash split of a few dozen rows often leaves 5% splits empty, and Azure ML's pipeline
    needs rows in them. The borrowed rows are those whose hashes lie closest to the split.
    """
    fractions = run.options.fractions
    empty = [
        i for i, share in ((1, fractions.validation), (2, fractions.test)) if share > 0 and run.split_counts[i] == 0
    ]
    donors = sorted((t for t in run.train_top if t[0] >= 0), reverse=True)
    if not empty or len(donors) < len(empty) or run.split_counts[0] - len(empty) < 1:
        return
    moves = {}
    for split, (_, train_index, line) in zip(empty, donors, strict=False):
        moves[train_index] = split
        run.split_counts[0] -= 1
        run.split_counts[split] += 1
        run.warning(
            line, Code.SPLIT_FILLED, "$", f"the {SPLITS[split]} split was empty, so this row moved there from train"
        )
    if run.sink is not None:
        run.sink.move_train_rows(moves)


def _finish(run: _Run, source: str) -> Report:
    options = run.options
    if run.crlf_lines:
        run.warning(
            run.first_crlf, Code.CRLF, "$", f"{run.crlf_lines} line(s) end with CRLF; they are normalised to LF"
        )
    if run.dedup_full:
        run.warning(
            FILE_LEVEL,
            Code.DUPLICATE_CHECK_LIMITED,
            "$",
            f"the duplicate check remembered the first {options.duplicate_check_limit} distinct conversations and prompt_ids only",
        )
    _count_roles(run)
    _fill_empty_splits(run)
    if sum(run.split_counts) + run.rejected_lines == 0:
        run.error(FILE_LEVEL, Code.EMPTY_FILE, "$", "the file has no conversations (it is empty or only blank lines)")
    elif run.split_counts[0] < options.min_train_rows and not run.errors.totals[Code.COMPRESSED_FILE]:
        f = options.fractions
        run.error(
            FILE_LEVEL,
            Code.TOO_FEW_CONVERSATIONS,
            "$",
            f"{sum(run.split_counts)} usable conversation(s), {run.split_counts[0]} in train after the "
            f"{f.train:g}/{f.validation:g}/{f.test:g} split (validation {run.split_counts[1]}, test "
            f"{run.split_counts[2]}); Azure ML's chat-completion preprocessing needs at least "
            f"{options.min_train_rows} training rows, so upload more conversations",
        )
    # With --drop-invalid only file-level errors reject: bad lines are dropped and listed.
    blocking = _FILE_LEVEL_ERRORS if options.drop_invalid else run.errors.totals.keys()
    valid = not any(run.errors.totals[c] for c in blocking)
    return Report(
        source=source,
        valid=valid,
        errors=run.errors,
        warnings=run.warnings,
        stats=run.stats,
        split_counts=run.split_counts,
        strict=options.strict,
        drop_invalid=options.drop_invalid,
        dropped_line_ranges=run.dropped if options.drop_invalid else [],
        dropped_lines=run.rejected_lines if options.drop_invalid else 0,
    )
