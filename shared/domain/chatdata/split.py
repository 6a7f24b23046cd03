"""Deterministic train/validation/test assignment from a conversation's content hash.

The hash is XXH3-64 of the conversation's line as uploaded, without BOM, its line ending made LF.
XXH3's output is frozen by its specification, so the same line lands in the same split on any
machine and Python version, and exact duplicates always share a split (no train/test leak).
Hashing the bytes we already hold, as they are for the usual LF line, costs ~0.1 µs a line;
re-encoding the messages to a canonical form would cost ~5 µs (see bench/validate_speed.py).
"""

from __future__ import annotations

import xxhash

from .fractions import SplitFractions

SPLITS = ("train", "validation", "test")
__all__ = ["SPLITS", "SplitFractions", "assign", "content_hash"]


def content_hash(line: bytes) -> int:
    """The key for both the split and the duplicate check: LF, CRLF and no line ending hash alike."""
    if line.endswith(b"\r\n"):
        line = line[:-2] + b"\n"
    elif not line.endswith(b"\n"):
        line += b"\n"
    return xxhash.xxh3_64_intdigest(line)


def assign(digest: int, thresholds: tuple[int, int]) -> int:
    """Index into SPLITS for a content hash."""
    if digest < thresholds[0]:
        return 0
    return 1 if digest < thresholds[1] else 2
