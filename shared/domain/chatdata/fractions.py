"""Train/validation/test fractions: parsed from settings, so this module imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass

_SPACE = 1 << 64


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
