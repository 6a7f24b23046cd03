"""Retire every endpoint chatft created in the workspace, each as `chatft retire` retires one (before `azd down`).

Only endpoints tagged chatft_managed=true are asked for; anyone else's is named and left. A kept endpoint
(chatft_keep) is refused unless forced, as `chatft retire` refuses it. One endpoint's failure never stops the
others. Deleting is asked, not awaited: `wait_until_gone` polls the listing until none of the asked endpoints
is left (or the deadline passes) and records their rows retired, as the janitor's next run would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.domain.janitor import MANAGED_TAG
from shared.domain.tags import is_true, tag
from shared.flows.endpoint_actions import ActionContext, Refused, retire
from shared.flows.janitor import JanitorContext, confirm_retired
from shared.flows.lifecycle_events import publish_all_due

POLL_SECONDS = 15.0


@dataclass(frozen=True)
class Retirement:
    endpoint: str
    ok: bool
    """False: refused (kept, not ours) or Azure ML said no; `message` says what to do."""
    message: str


def retire_all(ctx: ActionContext, *, force: bool = False, reason: str = "") -> tuple[list[Retirement], list[str]]:
    """(one Retirement per chatft endpoint, the names of the endpoints that are not chatft's and were left)."""
    endpoints = ctx.workspace.list_endpoints()
    others = sorted(e.name for e in endpoints if not is_true(tag(e.tags, MANAGED_TAG)))
    results = []
    for endpoint in sorted(endpoints, key=lambda e: e.name):
        if endpoint.name in others:
            continue
        try:
            outcome = retire(ctx, endpoint.name, force=force, reason=reason)
        except Refused as exc:
            results.append(Retirement(endpoint.name, False, str(exc)))
        except Exception as exc:  # one endpoint's failure never leaves the others billing
            results.append(Retirement(endpoint.name, False, f"endpoint {endpoint.name}: {type(exc).__name__}: {exc}"))
        else:
            results.append(Retirement(endpoint.name, outcome.ok, outcome.message))
    return results, others


def wait_until_gone(
    ctx: ActionContext,
    names: set[str],
    timeout_seconds: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> set[str]:
    """The names still listed when the deadline passed (empty: all gone); the rows of those gone are RETIRED."""
    deadline = clock() + timeout_seconds
    while True:
        listed = {e.name for e in ctx.workspace.list_endpoints()}
        left = names & listed
        if not left or clock() >= deadline:
            break
        sleep(min(POLL_SECONDS, max(0.0, deadline - clock())))
    now = ctx.now()
    jctx = JanitorContext(ctx.settings, ctx.workspace, None, ctx.ledger, ctx.store, now=ctx.now)  # type: ignore[arg-type]  # no metrics read
    confirm_retired(jctx, listed, now)
    publish_all_due(ctx.ledger, ctx.events, now, ctx.store)
    return left
