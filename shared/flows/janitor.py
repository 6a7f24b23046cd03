"""One janitor run: list our endpoints, gather facts, judge them, delete the idle ones (capped).

Every decision is one structured log line. Deleting is asked, never awaited: the ledger row says
`retiring` (with the reason and the measured idle time), and only a later run that no longer finds
the endpoint makes it `retired`, and says so in the report. A delete that fails, or that Azure ML
drops, is asked again on every run until the endpoint is gone; one failure never stops the run.

Metrics that cannot be read are never a silent keep: the decision says why (for a refused query,
the role and the scope to assign it on, also logged at ERROR by the metrics adapter), and the
upload's report says its endpoint's usage could not be read, until it can be again.

The run's one list of the workspace's endpoints also keeps the ledger honest both ways: an endpoint
of ours that no row owns as live or deploying is an orphan, deleted once idle (the row, if any, is
left as it is); a `live` row whose endpoint is not in the list (deleted outside chatft, or lost with
a crash) is confirmed gone with one read (only a 404 counts) and becomes `retired` with the reason,
reported and announced like any retirement, so `chatft redeploy` works again. A list that fails
raises before anything is judged: a failure is never taken for "gone".
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared.azure.metrics import RequestCounts, UsageMetrics
from shared.azure.storage import PreparedStore
from shared.domain.deploy.sku import price_of
from shared.domain.janitor import MANAGED_TAG, Decision, Facts, Verdict, needs_metrics, plan
from shared.domain.ledger import Ledger, LedgerEntry, Status, UploadKey
from shared.domain.naming import dataset_prefix
from shared.domain.tags import is_true, tag
from shared.domain.training import endpoint_uptime
from shared.domain.workspace import EndpointInfo, Workspace
from shared.flows.deployment_start import deployment_summary
from shared.flows.lifecycle_events import Publisher, publish_all_due
from shared.flows.reports import update_report, write_report
from shared.logs import log_step
from shared.settings import Settings


@dataclass
class JanitorContext:
    settings: Settings
    workspace: Workspace
    usage: UsageMetrics
    ledger: Ledger
    store: PreparedStore
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    events: Publisher | None = None
    """Where lifecycle events go (shared.flows.lifecycle_events); None: nowhere."""


GONE = "endpoint deleted outside chatft"
"""The reason a `live` row whose endpoint the workspace no longer has is retired with."""
OWNING = (Status.LIVE, Status.RETIRING)
"""A row in these statuses owns its endpoint for the janitor: retiring it changes the row."""


def _ledger_entry(ctx: JanitorContext, endpoint: EndpointInfo) -> LedgerEntry | None:
    """The row that names this endpoint as its deployment's, whatever its status."""
    dataset, sha = tag(endpoint.tags, "chatft_dataset"), tag(endpoint.tags, "chatft_upload")
    if not dataset or not sha:
        return None
    entry = ctx.ledger.get(UploadKey(dataset, sha))
    return entry if entry is not None and entry.deploy.get("endpoint") == endpoint.name else None


def _live_at(entry: LedgerEntry | None) -> datetime | None:
    value = entry.deploy.get("live_at") if entry is not None and entry.status is Status.LIVE else None
    return datetime.fromisoformat(value) if value else None


def run_janitor(ctx: JanitorContext) -> list[Decision]:
    settings, now = ctx.settings, ctx.now()
    window, max_age = timedelta(minutes=settings.janitor_idle_minutes), settings.janitor_max_age
    live = ctx.ledger.with_status(Status.LIVE)  # read before the list: a row live now had its endpoint by then
    endpoints = ctx.workspace.list_endpoints()  # raises rather than return part of the workspace
    listed = {e.name for e in endpoints}
    confirm_retired(ctx, listed, now)
    retire_vanished(ctx, live, listed, now)
    rows = {e.name: _ledger_entry(ctx, e) for e in endpoints if is_true(tag(e.tags, MANAGED_TAG))}
    entries = {name: e for name, e in rows.items() if e is not None and e.status in OWNING}
    facts = {
        e.name: Facts(
            name=e.name,
            tags=e.tags,
            provisioning_state=e.provisioning_state,
            created_at=e.created_at,
            ledger_status=rows[e.name].status.value if rows.get(e.name) else None,
            live_at=_live_at(rows.get(e.name)),
        )
        for e in endpoints
    }
    ids = {
        name: f"{settings.workspace_resource_id}/onlineEndpoints/{name}"
        for name, f in facts.items()
        if needs_metrics(f, now, window, max_age)
    }
    counts = ctx.usage.requests_in_window(list(ids.values()), window) if ids else {}
    unreadable = counts.unreadable if isinstance(counts, RequestCounts) else {}
    for name, rid in ids.items():
        facts[name] = dataclasses.replace(
            facts[name], requests=counts.get(rid), metrics_error=None if rid in counts else unreadable.get(rid)
        )
    decisions = plan(
        facts.values(),
        now,
        window,
        max_deletes=settings.janitor_max_deletes,
        dry_run=settings.janitor_dry_run,
        max_age=max_age,
    )
    for decision in decisions:
        if decision.action == "delete":
            try:
                _retire(ctx, decision, entries.get(decision.name), now)
            except Exception as exc:  # one endpoint's failure must not leave the others billing
                logging.getLogger("chatft").exception("janitor step for %s failed", decision.name)
                log_step(
                    "janitor.error", endpoint=decision.name, error=f"{type(exc).__name__}: {exc}", level=logging.ERROR
                )
        elif decision.verdict in (Verdict.UNKNOWN, Verdict.BUSY) and entries.get(decision.name):
            try:
                _report_usage(ctx, entries[decision.name], decision, facts[decision.name].metrics_error)
            except Exception as exc:  # a report that cannot be written never stops the run
                log_step(
                    "janitor.error", endpoint=decision.name, error=f"{type(exc).__name__}: {exc}", level=logging.ERROR
                )
        log_step(
            "janitor.decision",
            endpoint=decision.name,
            verdict=decision.verdict.value,
            requests=decision.requests,
            action=decision.action,
            reason=decision.reason,
            cid=rows[decision.name].cid if rows.get(decision.name) else None,
            level=logging.WARNING if decision.verdict.value == "metrics-unknown" else logging.INFO,
        )
    publish_all_due(ctx.ledger, ctx.events, now, ctx.store)  # retiring/retired rows: best effort
    log_step(
        "janitor.run",
        endpoints=len(decisions),
        deleted=sum(d.action == "delete" for d in decisions),
        dry_run=settings.janitor_dry_run,
    )
    return decisions


def _retire(ctx: JanitorContext, decision: Decision, entry: LedgerEntry | None, now: datetime) -> None:
    """Ask for the delete (never awaited) and record it as `retiring`; a failed request is recorded
    and reported too, and asked again on the next run."""
    error = None
    try:
        ctx.workspace.begin_delete_endpoint(decision.name)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log_step("janitor.delete_failed", endpoint=decision.name, error=error, level=logging.ERROR)
    if entry is None:
        return
    previous = entry.deploy.get("retired") or {}
    entry.status = Status.RETIRING
    entry.updated_at = now
    entry.deploy["retired"] = {
        "at": previous.get("at", now.isoformat()),
        "reason": previous.get("reason", decision.reason),
        "idle_minutes_measured": previous.get("idle_minutes_measured", ctx.settings.janitor_idle_minutes),
        "age_minutes": previous.get("age_minutes", int(decision.age.total_seconds() // 60) if decision.age else None),
        "delete_requests": previous.get("delete_requests", 0) + 1,
        "last_error": error,
    }
    if ctx.ledger.save(entry):
        report_retirement(ctx, entry, now, "retiring")


def confirm_retired(ctx: JanitorContext, listed: set[str], now: datetime) -> None:
    """Rows whose delete was asked for and whose endpoint is no longer listed: confirmed gone."""
    for entry in ctx.ledger.with_status(Status.RETIRING):
        if entry.deploy.get("endpoint") in listed:
            continue  # still there: judged (and asked again) below
        entry.status = Status.RETIRED
        entry.updated_at = now
        entry.deploy.setdefault("retired", {})["confirmed_gone_at"] = now.isoformat()
        if ctx.ledger.save(entry):
            log_step("janitor.retired", cid=entry.cid, endpoint=entry.deploy.get("endpoint"))
            report_retirement(ctx, entry, now, "retired")


def retire_vanished(ctx: JanitorContext, live: list[LedgerEntry], listed: set[str], now: datetime) -> None:
    """`live` rows (read before the list) whose endpoint the list lacks: read once more, and only if the
    workspace answers 404 (get_endpoint's None) the row becomes `retired`, with the reason; an ETag save,
    so a row someone changed meanwhile (a retire, a redeploy) is left to them."""
    for entry in live:
        name = entry.deploy.get("endpoint")
        if not name or name in listed:
            continue
        try:
            if ctx.workspace.get_endpoint(name) is not None:
                continue  # listed late, or created again meanwhile: not gone
        except Exception as exc:  # not a 404: no evidence it is gone; the next run looks again
            log_step("janitor.error", endpoint=name, error=f"{type(exc).__name__}: {exc}", level=logging.WARNING)
            continue
        entry.status, entry.updated_at = Status.RETIRED, now
        entry.deploy["retired"] = {
            "at": now.isoformat(),
            "reason": f"{GONE} (the workspace no longer has it)",
            "by": "the idle-endpoint janitor",
            "confirmed_gone_at": now.isoformat(),
            "found_gone": True,
        }
        if ctx.ledger.save(entry):
            log_step("janitor.endpoint_gone", cid=entry.cid, endpoint=name, level=logging.WARNING)
            report_retirement(ctx, entry, now, "retired")


def report_retirement(ctx: JanitorContext, entry: LedgerEntry, now: datetime, stage: str) -> None:
    """The report's deployment section for a retiring or retired endpoint (also `chatft retire`'s)."""
    retired = entry.deploy.get("retired") or {}
    summary = deployment_summary(entry)
    summary["retired"] = f"{retired.get('at', now.isoformat())}: {retired.get('reason')}"
    if stage == "retired":
        hours = endpoint_uptime(
            entry.deploy.get("live_at"),
            retired.get("confirmed_gone_at") or retired.get("at"),
            entry.deploy.get("instance_type") or "",
            price_of(entry.deploy.get("instance_type") or ""),
        )
        # found gone: deleted at some moment before this run, so this is the most it can have been up
        summary["endpoint_hours"] = (
            f"at most {hours}" if retired.get("found_gone") and entry.deploy.get("live_at") else hours
        )
    if stage == "retiring":
        summary["retiring"] = (
            f"delete requested ({retired.get('delete_requests')}x); the next janitor run confirms it is gone"
            + (f"; last request failed: {retired['last_error']}" if retired.get("last_error") else "")
        )
    update_report(ctx.store, dataset_prefix(entry.key.dataset, entry.key.sha256), "deployment", summary)


USAGE_KEY = "janitor"
"""The deployment section's line about the janitor, present while the endpoint's usage cannot be read."""


def usage_unknown_line(error: str | None, settings: Settings) -> str:
    """Stable for as long as the cause is the same (no times, no trace ids), so the report is
    written when it appears or changes, not on every run."""
    cap = settings.janitor_max_age
    then = (
        f"it is deleted anyway once {settings.janitor_max_age_hours:g} hours old (JANITOR_MAX_AGE_HOURS)"
        if cap is not None
        else "nothing will delete it: it bills until that is fixed, someone deletes it, or JANITOR_MAX_AGE_HOURS is set"
    )
    return (
        f"the endpoint's usage could not be read{f' ({error})' if error else ''}, so the idle-endpoint "
        f"janitor cannot tell whether it is idle and keeps it; {then}"
    )


def _report_usage(ctx: JanitorContext, entry: LedgerEntry, decision: Decision, error: str | None) -> None:
    """Metrics unknown: say so (and why) in the report. Readable again: take the line out."""
    prefix = dataset_prefix(entry.key.dataset, entry.key.sha256)
    if decision.verdict is Verdict.UNKNOWN:
        update_report(
            ctx.store,
            prefix,
            "deployment",
            {**deployment_summary(entry), USAGE_KEY: usage_unknown_line(error, ctx.settings)},
        )
        return

    def without_line(doc: dict | None) -> dict | None:
        section = (doc or {}).get("deployment")
        if not isinstance(section, dict) or USAGE_KEY not in section:
            return None  # nothing to take out: nothing is written
        section.pop(USAGE_KEY)
        return doc

    write_report(ctx.store, prefix, without_line)
