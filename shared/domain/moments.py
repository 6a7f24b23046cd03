"""Times read back from ledger rows and reports: ISO 8601 text or a datetime, always timezone-aware."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def aware_time(value: Any) -> datetime | None:
    """The moment `value` names (a naive one is UTC, as chatft writes them), or None for anything else."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
