"""Deterministic train/validation/test assignment from a conversation's content hash.

The hash is XXH3-64 of the conversation's line as uploaded, without BOM and line ending.
XXH3's output is frozen by its specification, so the same line lands in the same split on any
machine and Python version, and exact duplicates always share a split (no train/test leak).
Hashing the bytes we already hold costs ~0.4 µs a line; re-encoding the messages to a
canonical form would cost ~5 µs, a third of the parse (see bench/validate_speed.py).
"""

from __future__ import annotations

import xxhash

from .fractions import SplitFractions

SPLITS = ("train", "validation", "test")
__all__ = ["SPLITS", "SplitFractions", "assign", "content_hash"]


def content_hash(line: bytes) -> int:
    """The key for both the split and the duplicate check; CRLF and LF endings hash alike."""
    end = len(line)
    if end and line[end - 1] == 10:
        end -= 2 if end > 1 and line[end - 2] == 13 else 1
    return xxhash.xxh3_64_intdigest(memoryview(line)[:end])


def assign(digest: int, thresholds: tuple[int, int]) -> int:
    """Index into SPLITS for a content hash."""
    if digest < thresholds[0]:
        return 0
    return 1 if digest < thresholds[1] else 2
