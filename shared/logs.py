"""One structured line per step: `chatft <step> {json}` so people and log queries both read it."""

from __future__ import annotations

import logging
from typing import Any

import orjson

logger = logging.getLogger("chatft")


def log_step(step: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one step with its fields; values that are not JSON types are logged as their str()."""
    payload = orjson.dumps({"step": step, **fields}, default=str, option=orjson.OPT_SORT_KEYS).decode()
    logger.log(level, "chatft %s %s", step, payload)
