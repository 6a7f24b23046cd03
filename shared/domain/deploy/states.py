"""Azure resource provisioning states, read the same way for endpoints and deployments."""

from __future__ import annotations

from enum import Enum


class Progress(str, Enum):
    DONE = "done"
    FAILED = "failed"
    PENDING = "pending"


_DONE = {"succeeded"}
_FAILED = {"failed", "canceled", "cancelled"}


def progress(provisioning_state: str | None) -> Progress:
    state = (provisioning_state or "").strip().lower()
    if state in _DONE:
        return Progress.DONE
    if state in _FAILED:
        return Progress.FAILED
    return Progress.PENDING
