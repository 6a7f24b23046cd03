"""MAX_LIVE_ENDPOINTS and the budget, before a registered model's endpoint is created.

A `registered` row is first taken as `deploying` (an ETag save, still at check_sku: nothing created), then
the others are counted: every row `deploying` or `live`. Of two rows admitted at once, the later counted
the earlier, so the cap is never passed (shared.domain.job_queue says the same of jobs). A row past the
cap waits `deploy_queued` with the reason, first come first; the reconciler's tick releases the first
waiting rows as endpoints are retired. With DEPLOY_EVICT_IDLE=true, the least recently used endpoint that is
neither kept nor younger than JANITOR_IDLE_MINUTES is retired first, the janitor's way (`retiring`, the
delete asked, `retired` once the janitor sees it gone), and both reports say which and why.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

from shared.domain.janitor import Facts, Verdict, judge
from shared.domain.ledger import LedgerEntry, Status
from shared.domain.naming import dataset_prefix
from shared.flows.deploy_context import DeployContext
from shared.flows.deployment_start import deployment_summary
from shared.flows.reports import update_report
from shared.flows.submission import budget_reason
from shared.logs import log_step

QUEUED = "queued"
"""`entry.deploy` key: {"at", "reason"} while the deployment waits (kept while it is retried, for its place)."""
EVICTED = "evicted"
"""`entry.deploy` key: the endpoint retired to make room for this one, and why."""
HOLDING = (Status.DEPLOYING, Status.LIVE)


def _queued_at(entry: LedgerEntry) -> str:
    queued = entry.deploy.get(QUEUED) if isinstance(entry.deploy.get(QUEUED), dict) else {}
    return str(queued.get("at") or entry.deploy.get("started_at") or "")


def admit(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    """None: `entry` (now `deploying`, saved) may create its endpoint. Else where it stopped (queued, moved on)."""
    now = ctx.now()
    entry.status, entry.updated_at = Status.DEPLOYING, now
    if not ctx.ledger.save(entry):
        return "another worker moved this deployment on"
    rows = ctx.ledger.with_status(*HOLDING, Status.DEPLOY_QUEUED)
    holding = [r for r in rows if r.status in HOLDING and r.key != entry.key]
    mine = _queued_at(entry) if isinstance(entry.deploy.get(QUEUED), dict) else now.isoformat()
    ahead = [r for r in rows if r.status is Status.DEPLOY_QUEUED and r.key != entry.key and _queued_at(r) < mine]
    cap = ctx.settings.max_live_endpoints
    reason = budget_reason(ctx.ledger, ctx.settings, now)
    reason = f"budget: {reason}" if reason else None
    evict = reason is None and len(holding) >= cap and ctx.settings.deploy_evict_idle
    if evict and _evict_one(ctx, entry, [r for r in holding if r.status is Status.LIVE], now):
        holding = [r for r in ctx.ledger.with_status(*HOLDING) if r.key != entry.key]
    if reason is None and len(holding) >= cap:
        reason = f"MAX_LIVE_ENDPOINTS={cap}: {len(holding)} endpoints live or deploying" + (
            "" if ctx.settings.deploy_evict_idle else " (DEPLOY_EVICT_IDLE=true would retire the least recently used)"
        )
    if reason is None and ahead:
        reason = f"{len(ahead)} registered model{'s' if len(ahead) != 1 else ''} waiting came first"
    if reason is None:
        if entry.deploy.pop(QUEUED, None) is not None:
            entry.deploy["deadline"] = (now + timedelta(minutes=ctx.settings.deploy_deadline_minutes)).isoformat()
            if not ctx.ledger.save(entry):
                return "another worker moved this deployment on"
        return None
    entry.status, entry.updated_at = Status.DEPLOY_QUEUED, now
    entry.deploy[QUEUED] = {"at": mine, "reason": reason}
    if not ctx.ledger.save(entry):
        return "another worker moved this deployment on"
    log_step("deploy.queued", cid=entry.cid, endpoint=entry.deploy.get("endpoint"), reason=reason)
    _report(ctx, entry)
    return f"deploy_queued: {reason}"


def release(ctx: DeployContext) -> list[str]:
    """The tick: as many waiting deployments as there is room for go back to `registered` (first come first);
    `admit` then takes each as any other. Returns their endpoints."""
    rows = ctx.ledger.with_status(*HOLDING, Status.DEPLOY_QUEUED)
    waiting = sorted((r for r in rows if r.status is Status.DEPLOY_QUEUED), key=_queued_at)
    if not waiting:
        return []
    room = ctx.settings.max_live_endpoints - sum(1 for r in rows if r.status in HOLDING)
    if ctx.settings.deploy_evict_idle:
        room = max(room, 1)  # admit may retire an idle endpoint to make room
    released = []
    for entry in waiting[: max(room, 0)]:
        entry.status, entry.updated_at = Status.REGISTERED, ctx.now()
        if ctx.ledger.save(entry):
            released.append(str(entry.deploy.get("endpoint")))
    return released


def _evict_one(ctx: DeployContext, entry: LedgerEntry, live: list[LedgerEntry], now: datetime) -> bool:
    """Retire the least recently used live endpoint that the janitor would judge on its traffic (ours, not
    kept, not younger than JANITOR_IDLE_MINUTES, metrics readable): the fewest requests in that window,
    then the longest live. False when none qualifies (the row waits instead)."""
    usage = getattr(ctx, "usage", None)
    window = timedelta(minutes=ctx.settings.janitor_idle_minutes)
    candidates: list[tuple[LedgerEntry, Facts]] = []
    for row in live:
        endpoint = ctx.workspace.get_endpoint(str(row.deploy.get("endpoint") or ""))
        if endpoint is None:
            continue
        live_at = datetime.fromisoformat(row.deploy["live_at"]) if row.deploy.get("live_at") else None
        facts = Facts(endpoint.name, endpoint.tags, endpoint.provisioning_state, endpoint.created_at, "live", live_at)
        candidates.append((row, facts))
    if usage is None or not candidates:
        return False
    ids = {f.name: f"{ctx.settings.workspace_resource_id}/onlineEndpoints/{f.name}" for _, f in candidates}
    try:
        counts = usage.requests_in_window(list(ids.values()), window)
    except Exception as exc:  # unknown traffic is never a reason to retire
        log_step("deploy.evict_unknown", error=f"{type(exc).__name__}: {exc}", level=logging.WARNING)
        return False
    judged = []
    for row, facts in candidates:
        facts = dataclasses.replace(facts, requests=counts.get(ids[facts.name]))
        decision = judge(facts, now, window)
        if decision.verdict in (Verdict.IDLE, Verdict.BUSY):
            judged.append((facts.requests or 0, facts.live_at or now, row, decision))
    if not judged:
        return False
    requests, _, victim, decision = min(judged, key=lambda j: (j[0], j[1]))
    minutes = ctx.settings.janitor_idle_minutes
    why = (
        f"evicted for {entry.source or entry.key.dataset} ({entry.key.sha256[:12]}): MAX_LIVE_ENDPOINTS="
        f"{ctx.settings.max_live_endpoints} and DEPLOY_EVICT_IDLE=true; the least recently used endpoint "
        f"({requests} request{'s' if requests != 1 else ''} in the last {minutes:g} minutes, {decision.reason})"
    )
    if not _retire(ctx, victim, why, now):
        return False
    entry.deploy[EVICTED] = {"endpoint": victim.deploy.get("endpoint"), "upload": victim.source, "reason": why}
    return True


def _retire(ctx: DeployContext, victim: LedgerEntry, why: str, now: datetime) -> bool:
    """The janitor's safe path: the row `retiring` first (the reconciler and others stop owning it), then the
    delete is asked; the janitor confirms it gone and records `retired`, like any retirement."""
    from shared.flows.janitor import JanitorContext, report_retirement

    name = str(victim.deploy.get("endpoint"))
    victim.status, victim.updated_at = Status.RETIRING, now
    victim.deploy["retired"] = {
        "at": now.isoformat(),
        "reason": why,
        "by": "MAX_LIVE_ENDPOINTS (DEPLOY_EVICT_IDLE)",
        "delete_requests": 1,
        "last_error": None,
    }
    if not ctx.ledger.save(victim):
        return False
    try:
        ctx.workspace.begin_delete_endpoint(name)
    except Exception as exc:  # recorded: the janitor asks again on every run until it is gone
        victim.deploy["retired"]["last_error"] = f"{type(exc).__name__}: {exc}"
        ctx.ledger.save(victim)
    log_step("deploy.evicted", cid=victim.cid, endpoint=name, reason=why)
    jctx = JanitorContext(ctx.settings, ctx.workspace, None, ctx.ledger, ctx.store, now=ctx.now)  # type: ignore[arg-type]
    report_retirement(jctx, victim, now, "retiring")
    return True


def _report(ctx: DeployContext, entry: LedgerEntry) -> None:
    update_report(
        ctx.store, dataset_prefix(entry.key.dataset, entry.key.sha256), "deployment", deployment_summary(entry)
    )
