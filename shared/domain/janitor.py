"""Which managed online endpoints are idle, decided without any I/O.

Fail safe throughout: an endpoint is deleted only if it is ours, not protected, not being deployed
by the reconciler, older than the idle window, and its metrics *prove* zero requests in that window.
The one exception is the optional hard cap (JANITOR_MAX_AGE_HOURS): an endpoint of ours, not
protected, created longer ago than the cap goes whatever its metrics, so unreadable metrics cannot
keep a GPU endpoint billing forever.

An endpoint of ours that no ledger row owns as live or deploying (no row, a row naming another
endpoint, a row `retired` or `deploy_failed` after a race with `chatft retire`) is an orphan: judged
like a live one (idle window, metrics, cap), so no race can leave one billing for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from shared.domain.tags import is_true, is_truthy, tag

MANAGED_TAG = "chatft_managed"
KEEP_TAG = "chatft_keep"
"""Add this tag (true/yes/1, any case) to an endpoint to keep it whatever its traffic."""


class Verdict(str, Enum):
    UNMANAGED = "unmanaged"
    PROTECTED = "protected"
    NOT_LIVE = "not-live"
    DELETING = "deleting"
    YOUNG = "young"
    UNKNOWN = "metrics-unknown"
    BUSY = "busy"
    IDLE = "idle"
    RETIRING = "retiring"
    """We asked for its deletion before and it is still there: asked again, whatever its traffic."""
    OVER_AGE = "over-age"
    """Created longer ago than JANITOR_MAX_AGE_HOURS: deleted whatever its traffic."""


@dataclass(frozen=True)
class Facts:
    """What the janitor knows about one endpoint."""

    name: str
    tags: dict[str, str]
    provisioning_state: str | None = None
    created_at: datetime | None = None
    ledger_status: str | None = None
    """The status of the ledger row that deploys this endpoint; None when no row names it."""
    live_at: datetime | None = None
    requests: int | None = None
    """Requests in the idle window; None when the metrics could not be read."""
    metrics_error: str | None = None
    """Why the metrics could not be read (the role and scope to assign, say), when known."""


@dataclass(frozen=True)
class Decision:
    name: str
    verdict: Verdict
    reason: str
    action: str = "keep"
    """keep, delete, would-delete (dry run) or capped (over JANITOR_MAX_DELETES)."""
    requests: int | None = None
    age: timedelta | None = None


def age_of(facts: Facts, now: datetime) -> timedelta | None:
    """Time since the later of the endpoint's creation and its going live (None if neither is known)."""
    moments = [m for m in (facts.created_at, facts.live_at) if m is not None]
    return now - max(moments) if moments else None


def created_age(facts: Facts, now: datetime) -> timedelta | None:
    """Time since the endpoint was created (since it went live when createdAt is unknown): the
    hard cap's age. None when neither is known, and the cap does not apply."""
    moment = facts.created_at or facts.live_at
    return now - moment if moment is not None else None


def needs_metrics(facts: Facts, now: datetime, window: timedelta, max_age: timedelta | None = None) -> bool:
    """Only endpoints that pass every other check are worth a metrics query."""
    return judge(facts, now, window, metrics_known=False, max_age=max_age).verdict is Verdict.UNKNOWN


def judge(
    facts: Facts,
    now: datetime,
    window: timedelta,
    *,
    metrics_known: bool = True,
    max_age: timedelta | None = None,
) -> Decision:
    """`max_age`: the hard cap (JANITOR_MAX_AGE_HOURS), None for none."""
    name, age = facts.name, age_of(facts, now)

    def decision(verdict: Verdict, reason: str) -> Decision:
        return Decision(name, verdict, reason, requests=facts.requests, age=age)

    if not is_true(tag(facts.tags, MANAGED_TAG)):
        return decision(Verdict.UNMANAGED, "not created by chatft (no chatft_managed=true tag)")
    if is_truthy(tag(facts.tags, KEEP_TAG)):
        return decision(Verdict.PROTECTED, f"tagged {KEEP_TAG}={tag(facts.tags, KEEP_TAG)}")
    if (facts.provisioning_state or "").lower() == "deleting":
        return decision(Verdict.DELETING, "already being deleted")
    if facts.ledger_status == "retiring":
        return decision(Verdict.RETIRING, "its deletion was requested before but it still exists: deleting again")
    if facts.ledger_status in DEPLOYING:
        return decision(Verdict.NOT_LIVE, f"ledger status {facts.ledger_status}: the deployment reconciler owns it")
    lifetime = created_age(facts, now)
    if max_age is not None and lifetime is not None and lifetime >= max_age:
        return decision(
            Verdict.OVER_AGE,
            f"{_orphan(facts)}{_minutes(lifetime)} since it was created, over the JANITOR_MAX_AGE_HOURS cap of "
            f"{_minutes(max_age)}: deleted whatever its traffic",
        )
    if age is None:
        return decision(Verdict.YOUNG, "age unknown (no createdAt and no live time): kept to be safe")
    if age < window:
        return decision(Verdict.YOUNG, f"only {_minutes(age)} old, younger than the {_minutes(window)} idle window")
    if not metrics_known or facts.requests is None:
        why = f" ({facts.metrics_error})" if facts.metrics_error else ""
        return decision(Verdict.UNKNOWN, f"request metrics could not be read{why}: kept to be safe")
    if facts.requests > 0:
        return decision(Verdict.BUSY, f"{facts.requests} request(s) in the last {_minutes(window)}")
    return decision(Verdict.IDLE, f"{_orphan(facts)}no requests in the last {_minutes(window)} (age {_minutes(age)})")


DEPLOYING = frozenset({"registered", "deploying"})
"""Ledger statuses whose endpoint the deployment reconciler is still building (or cleaning up)."""


def _orphan(facts: Facts) -> str:
    """How an endpoint no row owns as live came to be judged like one ("" for a live row's)."""
    if facts.ledger_status == "live":
        return ""
    if facts.ledger_status is None:
        return "orphan (no ledger row deploys it): "
    return f"orphan (its ledger row is {facts.ledger_status}): "


def plan(
    facts: Iterable[Facts],
    now: datetime,
    window: timedelta,
    *,
    max_deletes: int,
    dry_run: bool,
    max_age: timedelta | None = None,
) -> list[Decision]:
    """Judge every endpoint; delete the idle and over-age ones, oldest first, at most `max_deletes` a run.

    Deletions that were asked for before and did not happen come first: they are already owed.
    """
    decisions = [judge(f, now, window, max_age=max_age) for f in facts]
    idle = sorted(
        (d for d in decisions if d.verdict in _DELETABLE),
        key=lambda d: (d.verdict is Verdict.RETIRING, d.age or timedelta(0)),
        reverse=True,
    )
    chosen = {d.name for d in idle[:max_deletes]}
    planned = []
    for d in decisions:
        if d.verdict in _DELETABLE:
            action = ("would-delete" if dry_run else "delete") if d.name in chosen else "capped"
            d = Decision(d.name, d.verdict, d.reason, action, d.requests, d.age)
        planned.append(d)
    return planned


_DELETABLE = frozenset({Verdict.IDLE, Verdict.RETIRING, Verdict.OVER_AGE})


def _minutes(delta: timedelta) -> str:
    """2h00m, or 15s for demo-sized windows."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    return f"{minutes // 60}h{minutes % 60:02d}m"
