"""How a report document changes when several workers write it: the rules, with no I/O.

Deliveries repeat and race, so every write is a read-modify-write of report.json, and these
rules decide what survives. The ledger is the truth: a section that says what the ledger says
(`from_ledger`) never hides the details the worker that did the step wrote, and an upload's
report always ends up telling its latest attempt.
"""

from __future__ import annotations

from typing import Any

LATER_SECTIONS = ("job", "training", "deployment", "evaluation")
"""Sections written by later steps; a repeated ingest must not erase them."""
IN_PROGRESS = frozenset({"submitting", "retrying"})
TEXT_MAX = 4000
"""Longest string kept in a report (an SDK error can carry a whole HTTP body)."""


def merge_submission(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """The submission section to keep when `current` is written over `previous`.

    A later attempt wins; within one attempt a settled outcome beats an in-progress one, and a
    worker's detailed summary beats the ledger's short view of the same outcome.
    """
    if not previous:
        return current
    previous_attempt = previous.get("attempt", 0)
    attempt = current.get("attempt") or previous_attempt  # a section that does not know its attempt is of the latest
    if attempt != previous_attempt:
        return current if attempt > previous_attempt else previous
    settled, previous_settled = current.get("status") not in IN_PROGRESS, previous.get("status") not in IN_PROGRESS
    if previous_settled and (not settled or (current.get("from_ledger") and not previous.get("from_ledger"))):
        if current.get("repeated_upload") and previous.get("status") == current.get("status"):
            return {**previous, "repeated_upload": current["repeated_upload"]}
        return previous
    return current


def merge_report(new: dict[str, Any], existing: dict[str, Any]) -> dict[str, Any]:
    """A freshly validated report written over an existing one (a repeated or racing ingest).

    Keeps what later steps wrote, unless the submission now tells of another job (a retry after
    a failure starts a new story), and merges the submission sections.
    """
    previous, current = existing.get("submission"), new.get("submission")
    if current is None:
        new["submission"] = previous
        kept = previous
    else:
        kept = new["submission"] = merge_submission(previous, current)
    same_job = not previous or (kept or {}).get("job") in (None, previous.get("job"))
    for key in LATER_SECTIONS:
        if key in existing and same_job:
            new[key] = existing[key]
    if new.get("submission") is None:
        new.pop("submission")
    return new


def set_section(doc: dict[str, Any], section: str, data: dict[str, Any]) -> dict[str, Any]:
    """A later step's outcome written into a report (the submission section is merged)."""
    doc[section] = merge_submission(doc.get(section), data) if section == "submission" else data
    return doc


def clipped(value: Any) -> Any:
    """`value` with every string cut to TEXT_MAX characters: reports stay under a fixed size."""
    if isinstance(value, str):
        return value if len(value) <= TEXT_MAX else value[: TEXT_MAX - 1] + "…"
    if isinstance(value, dict):
        return {k: clipped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clipped(v) for v in value]
    return value
