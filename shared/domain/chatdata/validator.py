"""Stream-validate a JSONL upload in one pass with bounded memory, optionally writing the split.

Each line first tries the fast path: msgspec decodes it straight into the typed schema in C,
and a set lookup of its message types checks the role order. A line the fast path cannot
accept cleanly is re-read by the careful path (`checks.py`), which names every problem.
Both paths end in the same bookkeeping code in `_fast_loop`, so an accepted line is booked the
same way either way.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from typing import BinaryIO, Protocol

import xxhash

from shared.domain.shell import chatft

from .checks import OTHER_LAYOUTS, check_conversation, clip, decode_line
from .issues import FILE_LEVEL, Code, Finding, FindingLog, LineRanges
from .lines import (
    CR_SEPARATED,
    SNIFF_BYTES,
    UTF8_BOM,
    LineReader,
    Oversized,
    is_pretty_json_opening,
    sniff_compression,
    sniff_wide_encoding,
)
from .options import ValidationOptions
from .report import Report
from .schema import (
    CLEAN_BY_LENGTH,
    Assistant,
    Message,
    System,
    User,
    conversation_decoder,
    is_clean_sequence,
    prepared_row,
)
from .split import SPLITS, content_hash
from .stats import DENSE_MESSAGES, DENSE_TOKENS, Stats

FILE_LEVEL_ERRORS = frozenset(
    {
        Code.EMPTY_FILE,
        Code.COMPRESSED_FILE,
        Code.WRONG_ENCODING,
        Code.CR_LINE_ENDINGS,
        Code.NOT_JSONL,
        Code.TOO_FEW_CONVERSATIONS,
    }
)
"""Errors about the whole file: they reject it even with --drop-invalid."""
_WHOLE_FILE_ERRORS = FILE_LEVEL_ERRORS - {Code.EMPTY_FILE, Code.TOO_FEW_CONVERSATIONS}
"""Found in the first bytes: the rest of the file is not read as lines."""
_ROLE_OF = {System: "system", User: "user", Assistant: "assistant"}
Booking = tuple[int, int, list[Message], "str | None"]
"""What an accepted line is booked with: content hash, size for the token estimate, messages, prompt_id."""


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
        self.rejected = LineRanges()
        # Role counts of the fast path follow from its message counts (s?(ua)+), so only the
        # careful path counts roles one by one; `_finish` adds the two.
        self.slow_messages_hist: dict[int, int] = {}
        self.slow_roles = {"system": 0, "user": 0, "assistant": 0}
        self.crlf_lines = 0
        self.first_crlf = 0
        self.other_layouts: dict[str, int] = {}
        """Another layout (checks.OTHER_LAYOUTS) -> the first line in it."""

    def error(self, line: int, code: Code, path: str, message: str) -> None:
        self.errors.add(Finding(line, code, path, message))

    def warning(self, line: int, code: Code, path: str, message: str) -> None:
        self.warnings.add(Finding(line, code, path, message))

    def file_error(self, code: Code, message: str) -> None:
        self.error(FILE_LEVEL, code, "$", message)

    def _first_seen(self, seen: dict[int, int], key: int, number: int) -> int:
        """The line that had this key first (this one if new), remembering up to the configured limit."""
        if len(seen) < self.dedup_limit:
            return seen.setdefault(key, number)
        first = seen.get(key)
        if first is None:
            self.dedup_full = True
            return number
        return first

    def careful(self, number: int, data: bytes | Oversized) -> Booking | None:
        """The slow path: a line the fast path could not accept cleanly. Returns what the loop
        books for an accepted line (as the fast path finds it), or None for a rejected or blank one."""
        if type(data) is Oversized:
            self.error(
                number,
                Code.LINE_TOO_LONG,
                "$",
                f"line is {data.length} bytes, over the {self.options.max_line_bytes}-byte limit",
            )
            self.rejected.add(number)
            return None
        if data.isspace():
            self.stats.blank_lines += 1
            return None
        if data.endswith(b"\r\n"):
            self.crlf_lines += 1
            self.first_crlf = self.first_crlf or number
        obj, problem = decode_line(data)
        if problem is not None:
            self.error(number, problem[0], "$", problem[1])
            self.rejected.add(number)
            return None
        verdict = check_conversation(obj, strict=self.options.strict)
        if verdict.layout is not None:
            self.other_layouts.setdefault(verdict.layout, number)
        for code, path, message in verdict.warnings:
            self.warning(number, code, path, message)
        self.warnings.count_more(verdict.warnings.more)
        if verdict.messages is None:
            for code, path, message in verdict.errors:
                self.error(number, code, path, message)
            self.errors.count_more(verdict.errors.more)
            self.rejected.add(number)
            return None
        self.slow_messages_hist[len(verdict.messages)] = self.slow_messages_hist.get(len(verdict.messages), 0) + 1
        for message in verdict.messages:
            self.slow_roles[_ROLE_OF[type(message)]] += 1
        prompt_id = verdict.prompt_id
        size = len(data) - verdict.prompt_chars - (len(prompt_id) if prompt_id is not None else 0)
        return content_hash(data), size, verdict.messages, prompt_id


def validate_stream(
    stream: BinaryIO,
    options: ValidationOptions | None = None,
    *,
    source: str,
    sink: RowSink | None = None,
    read_all: bool = True,
) -> Report:
    """Validate (and with a sink, normalise and split) a JSONL byte stream in one pass.

    The stream is read to its end even when its first bytes already reject it (the ingest function hashes
    what it reads: the report is filed under the SHA-256), unless `read_all` is False: a caller that only
    needs the verdict then stops there, and the report's byte and line counts are of what was read.
    """
    options = options or ValidationOptions()
    run = _Run(options, sink)
    reader = LineReader(stream, options.max_line_bytes)
    proceed, first = _lead_in(run, reader)
    if proceed:
        if type(first) is Oversized:
            run.careful(reader.lines, first)
            _fast_loop(run, reader, reader.rest(), reader.lines + 1)
        else:
            _fast_loop(run, reader, itertools.chain((first,), reader.rest()), reader.lines)
    if proceed or read_all:
        reader.drain()
    run.stats.bytes_read = reader.bytes_read
    run.stats.lines = reader.lines
    return _finish(run, source)


class _NotClean(Exception):
    """The fast path hands a decoded line to the careful path (raised rarely, so it costs nothing)."""


def _fast_loop(run: _Run, reader: LineReader, lines: Iterable[bytes], start: int) -> None:
    """The hot loop. Every statement here runs once per line: keep it lean (bench/validate_speed.py).

    `lines` (with their LF) are numbered from `start`; `reader.lines` is the last number after.
    A line msgspec decodes into the schema with clean roles and no blank turn is accepted here;
    any other goes to `run.careful`. Both are booked by the same code below: duplicates, length,
    statistics, split and output row.
    """
    careful, warning, first_seen, stats = run.careful, run.warning, run._first_seen, run.stats
    decode = conversation_decoder.decode
    max_line = reader.max_line_bytes
    clean, long_clean, clean_max = CLEAN_BY_LENGTH, is_clean_sequence, len(CLEAN_BY_LENGTH)
    xxh3 = xxhash.xxh3_64_intdigest
    seen, seen_ids, limit = run.seen_content, run.seen_prompt_ids, run.dedup_limit
    max_tokens = run.max_tokens
    dense_messages, dense_tokens, messages_hist, tokens_hist = (
        stats.dense_messages,
        stats.dense_tokens,
        stats.messages_hist,
        stats.tokens_hist,
    )
    train_end, validation_end, top, counts = run.train_end, run.validation_end, run.train_top, run.split_counts
    top_floor = top[0][0]  # the lowest hash among the kept train rows closest to validation
    write = run.sink.write if run.sink is not None else None
    # msgspec raises DecodeError/ValidationError (ValueError), UnicodeDecodeError (a ValueError) for
    # bad UTF-8 in a string, and RecursionError for deep nesting: the careful path names each one.
    not_fast = (ValueError, RecursionError, _NotClean)
    number, crlf_lines = start - 1, 0
    for number, data in enumerate(lines, start):
        if len(data) > max_line and data[-1] != 10:
            careful(number, reader.oversized(data))
            continue
        try:
            conversation = decode(data)
            messages = conversation.messages
            kinds = [*map(type, messages)]
            count = len(kinds)
            if kinds != clean[count] if count < clean_max else not long_clean(kinds):
                raise _NotClean
            for message in messages:  # empty turns were refused by the decoder; whitespace-only ones here
                if message.content.isspace():
                    raise _NotClean
        except not_fast:
            booking = careful(number, data)
            if booking is None:
                continue
            digest, size, messages, prompt_id = booking
        else:
            # split.content_hash, inlined for the usual LF line (a clean line is never under 2 bytes)
            if data[-1] == 10 and data[-2] != 13:
                digest = xxh3(data)
            else:
                digest = content_hash(data)
                if data[-1] == 10:
                    crlf_lines += 1
                    run.first_crlf = run.first_crlf or number
            prompt_id = conversation.prompt_id
            size = len(data) - len(conversation.prompt) - (len(prompt_id) if prompt_id is not None else 0)
        first = seen.setdefault(digest, number) if len(seen) < limit else first_seen(seen, digest, number)
        if first != number:
            warning(number, Code.DUPLICATE_CONVERSATION, "messages", f"same messages as line {first}")
        if prompt_id is not None:
            key = hash(prompt_id)
            first = seen_ids.setdefault(key, number) if len(seen_ids) < limit else first_seen(seen_ids, key, number)
            if first != number:
                warning(
                    number,
                    Code.DUPLICATE_PROMPT_ID,
                    "prompt_id",
                    f"prompt_id {clip(prompt_id, 80)!r} also on line {first}",
                )
        tokens = (size + 3) >> 2  # stats.estimate_tokens, inlined
        if tokens > max_tokens:
            warning(
                number,
                Code.TOO_LONG,
                "messages",
                f"about {tokens} tokens, over the max sequence length {max_tokens}; it will be truncated",
            )
        if tokens < DENSE_TOKENS:
            dense_tokens[tokens] += 1
        else:
            tokens_hist[tokens] = tokens_hist.get(tokens, 0) + 1
        count = len(messages)  # (again: the careful path's messages)
        if count < DENSE_MESSAGES:
            dense_messages[count] += 1
        else:
            messages_hist[count] = messages_hist.get(count, 0) + 1
        if digest < train_end:
            split = 0
            if digest > top_floor:
                heapq.heapreplace(top, (digest, counts[0], number))
                top_floor = top[0][0]
        else:
            split = 1 if digest < validation_end else 2
        counts[split] += 1
        if write is not None:
            write(split, prepared_row(messages, prompt_id))
    run.crlf_lines += crlf_lines
    reader.lines = number


def _lead_in(run: _Run, reader: LineReader) -> tuple[bool, bytes | Oversized | None]:
    """Read up to the first non-blank line: (go on?, that line). Stops if the file is rejected whole.

    Files that are not UTF-8 JSON Lines at all (compressed, UTF-16, CR-only line endings,
    pretty-printed JSON) get one clear file-level error instead of an error on every line.
    The first line is judged by the stream's first bytes, peeked before reading, so even a
    first line over the length limit (a binary file, a CR-only file) is recognised.
    """
    head = reader.head()
    if _rejected_whole(run, head):
        return False, None
    bom = head.startswith(UTF8_BOM)
    if bom:
        run.warning(1, Code.BOM, "$", "the file starts with a UTF-8 byte order mark; it is removed")
        head = head[len(UTF8_BOM) :]
    head = head.split(b"\n", 1)[0]
    while (line := reader.next()) is not None:
        if bom:
            bom = False
            line = line[len(UTF8_BOM) :] if type(line) is bytes else line
        elif type(line) is bytes:
            head = line[:SNIFF_BYTES]
        if type(line) is bytes and not line.strip():
            run.stats.blank_lines += 1
            continue
        if CR_SEPARATED.search(head):
            run.file_error(
                Code.CR_LINE_ENDINGS,
                "lines end with a bare CR (\\r, classic Mac line endings), so the file reads as one line: "
                "convert the line endings to LF (e.g. `tr '\\r' '\\n' < in.jsonl > out.jsonl`)",
            )
            return False, None
        if is_pretty_json_opening(head):
            kind = "array" if head.strip().startswith(b"[") else "object"
            run.file_error(
                Code.NOT_JSONL,
                f"line {reader.lines} only opens a JSON {kind}: the file is pretty-printed JSON, but JSON Lines "
                "needs one whole conversation object per line (e.g. `jq -c '.[]' data.json > data.jsonl`)",
            )
            return False, None
        return True, line
    return False, None


def _rejected_whole(run: _Run, head: bytes) -> bool:
    """Compressed or UTF-16/32 files: nothing after their first bytes is JSONL."""
    kind = sniff_compression(head)
    if kind is not None:
        run.file_error(
            Code.COMPRESSED_FILE, f"the file is {kind}-compressed; decompress it and upload the plain .jsonl"
        )
        return True
    encoding = sniff_wide_encoding(head)
    if encoding is not None:
        run.file_error(
            Code.WRONG_ENCODING,
            f"the file is {encoding} text, but JSON Lines must be UTF-8: re-save it as UTF-8 "
            "(e.g. `iconv -f UTF-16 -t UTF-8 in.jsonl > out.jsonl`)",
        )
        return True
    return False


def _count_roles(run: _Run) -> None:
    run.stats.flush()
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
    for layout, line in run.other_layouts.items():  # one hint per layout, however many lines are in it
        command = chatft("dataset", source, "--out", "DIR", "--percent", "100")
        run.warning(
            line,
            Code.OTHER_LAYOUT,
            "$",
            f"line {line} looks like {OTHER_LAYOUTS[layout]}, which Azure ML's chat-completion fine-tuning does not "
            f"read: {command} rewrites the file as role/content messages",
        )
    _count_roles(run)
    _fill_empty_splits(run)
    rejected_whole = any(run.errors.totals[c] for c in _WHOLE_FILE_ERRORS)
    if rejected_whole:
        pass  # one clear error about the file; counting its conversations would only add noise
    elif sum(run.split_counts) + run.rejected.count == 0:
        run.file_error(Code.EMPTY_FILE, "the file has no conversations (it is empty or only blank lines)")
    elif run.split_counts[0] < options.min_train_rows:
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
    blocking = FILE_LEVEL_ERRORS if options.drop_invalid else run.errors.totals.keys()
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
        dropped=run.rejected if options.drop_invalid else LineRanges(),
    )
