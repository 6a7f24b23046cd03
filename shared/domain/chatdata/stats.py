"""Statistics over accepted conversations, kept as histograms so memory stays bounded.

Histograms are exact: their size grows with the number of *distinct* values, which for
message and token counts is tiny next to the number of lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TOKEN_ESTIMATE_DOC = (
    "estimated tokens = ceil((bytes of the line - characters of its prompt and prompt_id strings) / 4): "
    "about 4 bytes per token for English text under BPE tokenizers, and the JSON framing "
    "(about 30 bytes a message) stands in for the chat template's tokens per turn"
)


def estimate_tokens(conversation_bytes: int) -> int:
    """The documented token estimate (real tokenizers cannot be downloaded here)."""
    return (conversation_bytes + 3) >> 2


def percentile(histogram: dict[int, int], fraction: float) -> int | None:
    """Nearest-rank percentile of a histogram {value: count}."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


DENSE_TOKENS = 1 << 12
DENSE_MESSAGES = 1 << 8


@dataclass(slots=True)
class Stats:
    messages_hist: dict[int, int] = field(default_factory=dict)
    tokens_hist: dict[int, int] = field(default_factory=dict)
    dense_messages: list[int] = field(default_factory=lambda: [0] * DENSE_MESSAGES)
    dense_tokens: list[int] = field(default_factory=lambda: [0] * DENSE_TOKENS)
    """Counts of the usual small values, by index: a list slot costs half of a dict update per line.

    `messages_hist`/`tokens_hist` hold the rest until `flush` moves everything there.
    """
    roles: dict[str, int] = field(default_factory=lambda: {"system": 0, "user": 0, "assistant": 0})
    bytes_read: int = 0
    lines: int = 0
    blank_lines: int = 0

    def flush(self) -> None:
        """Fold the dense counts into the histograms (idempotent)."""
        for dense, hist in ((self.dense_messages, self.messages_hist), (self.dense_tokens, self.tokens_hist)):
            for value, n in enumerate(dense):
                if n:
                    hist[value] = hist.get(value, 0) + n
                    dense[value] = 0

    def summary(self) -> dict[str, object]:
        self.flush()

        def spread(hist: dict[int, int], *points: tuple[str, float]) -> dict[str, int | None]:
            out: dict[str, int | None] = {"min": min(hist) if hist else None}
            out.update({name: percentile(hist, q) for name, q in points})
            out["max"] = max(hist) if hist else None
            return out

        return {
            "conversations": sum(self.messages_hist.values()),
            "messages_per_conversation": spread(self.messages_hist, ("median", 0.5)),
            "estimated_tokens": spread(self.tokens_hist, ("median", 0.5), ("p95", 0.95)),
            "roles": dict(self.roles),
            "bytes_read": self.bytes_read,
            "lines": self.lines,
            "blank_lines": self.blank_lines,
        }
