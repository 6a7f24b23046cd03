"""Deterministic train/validation/test assignment from a conversation's content hash.

The hash is XXH3-64 of the conversation's line as uploaded, without BOM and line ending.
XXH3's output is frozen by its specification, so the same line lands in the same split on any
machine and Python version, and exact duplicates always share a split (no train/test leak).
Hashing the bytes we already hold costs ~0.4 µs a line; re-encoding the messages to a
canonical form would cost ~5 µs, a third of the parse (see bench/validate_speed.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import xxhash

SPLITS = ("train", "validation", "test")
_SPACE = 1 << 64


def content_hash(line: bytes) -> int:
    """The key for both the split and the duplicate check; CRLF and LF endings hash alike."""
    end = len(line)
    if end and line[end - 1] == 10:
        end -= 2 if end > 1 and line[end - 2] == 13 else 1
    return xxhash.xxh3_64_intdigest(memoryview(line)[:end])


@dataclass(frozen=True, slots=True)
class SplitFractions:
    train: float = 0.9
    validation: float = 0.05
    test: float = 0.05

    def __post_init__(self) -> None:
        parts = (self.train, self.validation, self.test)
        if any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-9 or self.train <= 0:
            raise ValueError(f"split fractions must be >= 0, train > 0, and sum to 1; got {parts}")

    @classmethod
    def parse(cls, text: str) -> SplitFractions:
        """Parse 'train,validation,test', e.g. '0.9,0.05,0.05' or '90,5,5' (percent)."""
        parts = [float(p) for p in text.replace("/", ",").split(",")]
        if len(parts) != 3:
            raise ValueError(f"expected three fractions 'train,validation,test', got {text!r}")
        if sum(parts) > 1.5:
            parts = [p / 100 for p in parts]
        return cls(*parts)

    def thresholds(self) -> tuple[int, int]:
        """Hash values below the first go to train, below the second to validation, the rest to test."""
        train_end = int(self.train * _SPACE)
        validation_end = int((self.train + self.validation) * _SPACE)
        return min(train_end, _SPACE), min(validation_end, _SPACE)


def assign(digest: int, thresholds: tuple[int, int]) -> int:
    """Index into SPLITS for a content hash."""
    if digest < thresholds[0]:
        return 0
    return 1 if digest < thresholds[1] else 2
