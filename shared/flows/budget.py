"""MONTHLY_BUDGET_USD: the month's estimated spend (shared.domain.spend) and its one warning at 80 %.

The warning is an event (`chatft.budget.warning`, its id the month's) and a log line, sent once a month:
a small blob in the prepared container (`_chatft/budget/<YYYY-MM>.json`) records that it went out, so
every later tick of the month says nothing. A publish that fails is tried again on the next tick.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from shared.domain import lifecycle_events as le
from shared.domain.ledger import Status
from shared.domain.spend import WARN_AT, MonthSpend, month_spend
from shared.logs import log_step

MARKER = "_chatft/budget/{month}.json"


def spend_now(ledger: Any, settings: Any, now: datetime) -> MonthSpend:
    """The month's spend by upload, as the guards see it."""
    return month_spend(
        ledger.with_status(*Status), now, gpu_price=settings.gpu_hourly_price_usd, budget=settings.monthly_budget_usd
    )


def warn_budget(ctx: Any) -> str | None:
    """The tick's check: at WARN_AT of the budget, warn once this month. What it did, or None."""
    if ctx.settings.monthly_budget_usd == "":
        return None
    now = ctx.now()
    try:
        spend = spend_now(ctx.ledger, ctx.settings, now)
        share = spend.share
        if share is None or share < WARN_AT:
            return None
        path = MARKER.format(month=spend.month)
        raw = ctx.store.read_bytes(path)
        if raw and json.loads(raw).get("warned_at"):
            return None
        event = le.budget_warning(
            month=spend.month,
            spent_usd=spend.usd,
            budget_usd=float(spend.budget or 0),
            time=now.isoformat(),
            uploads=len(spend.uploads),
        )
        log_step(
            "budget.warning",
            month=spend.month,
            estimated_spend_usd=round(spend.usd, 2),
            budget_usd=spend.budget,
            share=round(share, 3),
            level=logging.WARNING,
        )
        if ctx.events is not None:
            ctx.events.send([event])  # raises: not recorded, so the next tick sends it again (same id)
        record = {"warned_at": now.isoformat(), "estimated_spend_usd": round(spend.usd, 2), "event": event.id}
        ctx.store.put_bytes(path, json.dumps(record).encode(), "application/json")
        return f"warned: ${spend.usd:.2f} of ${spend.budget:g}"
    except Exception as exc:  # never the tick's problem
        log_step("budget.error", error=f"{type(exc).__name__}: {exc}", level=logging.WARNING)
        return f"error: {type(exc).__name__}"
