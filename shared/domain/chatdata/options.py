"""Knobs of validation and preparation, with the defaults Azure ML fine-tuning needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from .fractions import SplitFractions

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    strict: bool = False
    """Non-alternating user/assistant turns become errors instead of warnings."""
    drop_invalid: bool = False
    """Accept the file and write only the valid rows; every dropped line is listed."""
    max_seq_tokens: int = 4096
    min_train_rows: int = 10
    """Azure ML's chat-completion preprocessing needs at least 10 training rows."""
    fractions: SplitFractions = field(default_factory=SplitFractions)
    max_line_bytes: int = MIB
    """Longer lines are rejected unread, which keeps memory bounded on hostile input.

    1 MiB is about 250,000 tokens, far past any fine-tuning sequence length; decoding the
    worst line of that size costs under 40 MB."""
    examples_per_code: int = 20
    duplicate_check_limit: int = 100_000
    """Distinct conversations (and prompt_ids) remembered for the duplicate check."""
