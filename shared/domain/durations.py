"""How long, in the few characters a status line has: '45s', '12m 5s', '3h 20m'.

`chatft status`, `upload --follow` and `chatft dev`'s timer list all say it this way; report.md's longer form
('1h 02m 03s') is shared.domain.training's.
"""

from __future__ import annotations


def duration_text(seconds: float) -> str:
    """'45s', '12m 5s', '3h 20m' (whole seconds; a negative span is '0s')."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s" if s % 60 else f"{s // 60}m"
    return f"{s // 3600}h {s % 3600 // 60}m"
