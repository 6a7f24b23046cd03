"""What a person asks of one upload's endpoint: keep it, release it, retire it now, redeploy it.

Each goes through the path the timers already use, so a command and a timer can never disagree:
`keep`/`release` set or clear the tag the janitor reads (`chatft_keep`, any casing); `retire` asks
for the delete the way the janitor does (ours only; RETIRING, then RETIRED once seen gone, the
report saying who and why); `redeploy` puts the upload back at the reconciler's first step with
its registered model (`start_deployment`, as a re-upload of a retired file does), and the next
reconciler tick does the work. Refusals raise `Refused` with what to do instead; a name that names
nothing raises `UploadNotFound` (shared.domain.upload_lookup).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shared.azure.storage import PreparedStore
from shared.domain import upload_history
from shared.domain.janitor import KEEP_TAG, MANAGED_TAG
from shared.domain.ledger import DEPLOYMENT_ACTIVE, Ledger, LedgerEntry, Status, change_and_save
from shared.domain.naming import dataset_prefix
from shared.domain.shell import chatft
from shared.domain.tags import is_true, is_truthy, tag
from shared.domain.upload_lookup import UploadNotFound, find_upload
from shared.domain.workspace import EndpointInfo, Workspace
from shared.flows.deployment_start import deployment_summary, start_deployment
from shared.flows.janitor import GONE, JanitorContext, confirm_retired, report_retirement
from shared.flows.lifecycle_events import Publisher, publish_key
from shared.flows.reports import update_report
from shared.logs import log_step
from shared.settings import Settings

ENDPOINT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{2,31}")
"""Azure ML's rule for online endpoint names: only such a string is worth asking the workspace about."""
MODEL_FIELDS = ("model_id", "model_name", "model_version", "base_model", "endpoint")
"""What `start_deployment` needs from a previous deployment to deploy the same model again."""
SAVE_TRIES = 3
UNANNOUNCED = " (its lifecycle event could not be published as you: the app publishes it on its next reconciler tick)"


class Refused(Exception):
    """Understood, but not done (not ours, protected, never registered): the message says what to do instead."""


@dataclass(frozen=True)
class Outcome:
    message: str
    changed: bool = True
    """False: nothing needed doing (already kept, already live, ...)."""
    ok: bool = True
    """False: it was tried and did not work (a delete Azure ML refused); the message says what happens next."""


@dataclass
class ActionContext:
    settings: Settings
    ledger: Ledger
    workspace: Workspace
    store: PreparedStore
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    events: Publisher | None = None
    """The lifecycle events' publisher, when the target has a topic: what a command changed is announced at
    once. Best effort: if this identity may not publish, the app's next reconciler tick does (the outbox)."""


@dataclass(frozen=True)
class Subject:
    """What a query names: an upload (with its endpoint, if it has one), or an endpoint with no ledger row."""

    query: str
    entry: LedgerEntry | None
    endpoint: EndpointInfo | None
    name: str
    """The endpoint's name ("" when the upload never had one)."""

    @property
    def label(self) -> str:
        if self.entry is None:
            return f"endpoint {self.name}"
        return f"upload {self.entry.source or self.entry.key.dataset} ({self.entry.key.sha256[:12]})"


def find(ctx: ActionContext, query: str) -> Subject:
    """The upload `query` names (find_upload: blob, SHA-256 prefix, job or endpoint name); failing that, an
    endpoint of that name that has no ledger row (an orphan of ours, or someone else's)."""
    try:
        entry = find_upload(ctx.ledger.with_status(*Status), query)
    except UploadNotFound:
        name = query.strip()
        endpoint = ctx.workspace.get_endpoint(name) if ENDPOINT_NAME.fullmatch(name) else None
        if endpoint is None:
            raise
        return Subject(query, None, endpoint, endpoint.name)
    name = entry.deploy.get("endpoint") or ""
    endpoint = ctx.workspace.get_endpoint(name) if name else None
    return Subject(query, entry, endpoint, name)


# --- keep / release: the tag the janitor reads ---


def _without_keep(tags: dict[str, str]) -> dict[str, str]:
    """Every tag but the keep tag, whatever its casing (Azure tag names are case-insensitive, so two
    spellings must never be sent side by side)."""
    return {k: v for k, v in tags.items() if str(k).lower() != KEEP_TAG}


def _keep_key(tags: dict[str, str]) -> str | None:
    return next((k for k in tags if str(k).lower() == KEEP_TAG), None)


def _live_endpoint(subject: Subject, verb: str) -> EndpointInfo:
    """The endpoint to change, if it exists, is ours, and is not on its way out."""
    entry, endpoint = subject.entry, subject.endpoint
    if entry is not None and entry.status in (Status.RETIRING, Status.RETIRED):
        raise Refused(
            f"{subject.label} is {entry.status.value}: its endpoint {subject.name} is being or was deleted, "
            f"so there is nothing to {verb}; {chatft('redeploy', subject.query)} deploys its model again"
        )
    if endpoint is None:
        where = f" (status {entry.status.value}, step {entry.deploy.get('step')})" if entry is not None else ""
        raise Refused(
            f"{subject.label} has no endpoint{where}: nothing to {verb}"
            + (
                f"; run `chatft {verb} {subject.query}` once it is live"
                if entry and entry.status in DEPLOYMENT_ACTIVE
                else ""
            )
        )
    if not is_true(tag(endpoint.tags, MANAGED_TAG)):
        raise Refused(
            f"endpoint {endpoint.name} was not created by chatft (no {MANAGED_TAG}=true tag): chatft never changes "
            "it, and the janitor never removes it"
        )
    if (endpoint.provisioning_state or "").lower() == "deleting":
        raise Refused(f"endpoint {endpoint.name} is being deleted: nothing to {verb}")
    return endpoint


def keep(ctx: ActionContext, query: str) -> Outcome:
    """Tag the endpoint chatft_keep=true: the janitor's `protected` verdict, checked before any other."""
    subject = find(ctx, query)
    endpoint = _live_endpoint(subject, "keep")
    key = _keep_key(endpoint.tags)
    if key is not None and is_truthy(endpoint.tags[key]):
        return Outcome(
            f"endpoint {endpoint.name} is already kept ({key}={endpoint.tags[key]}): the janitor never removes it",
            changed=False,
        )
    ctx.workspace.set_endpoint_tags(endpoint.name, {**_without_keep(endpoint.tags), KEEP_TAG: "true"})
    now = ctx.now()
    _note(ctx, subject.entry, lambda d: d.__setitem__("kept", {"at": now.isoformat(), "by": "chatft keep"}), now)
    log_step("endpoint_action.keep", endpoint=endpoint.name, cid=subject.entry.cid if subject.entry else None)
    return Outcome(
        _applied(ctx, endpoint.name, True)
        or f"endpoint {endpoint.name} is kept ({KEEP_TAG}=true): the idle-endpoint janitor never removes it, and "
        f"it bills until {chatft('release', subject.query)} or {chatft('retire', subject.query, '--force')}"
    )


def release(ctx: ActionContext, query: str) -> Outcome:
    """Remove the keep tag, whatever its casing or value: the janitor judges the endpoint like any other again."""
    subject = find(ctx, query)
    endpoint = _live_endpoint(subject, "release")
    key = _keep_key(endpoint.tags)
    if key is None:
        return Outcome(f"endpoint {endpoint.name} is not kept (no {KEEP_TAG} tag): nothing to release", changed=False)
    ctx.workspace.set_endpoint_tags(endpoint.name, _without_keep(endpoint.tags))
    _note(ctx, subject.entry, lambda d: d.pop("kept", None), ctx.now(), upload_history.RELEASE)
    log_step("endpoint_action.release", endpoint=endpoint.name, cid=subject.entry.cid if subject.entry else None)
    minutes = ctx.settings.janitor_idle_minutes
    return Outcome(
        _applied(ctx, endpoint.name, False)
        or f"endpoint {endpoint.name} is released ({key}={endpoint.tags[key]} removed): the janitor deletes it once it "
        f"has had no requests for {minutes:g} minutes (JANITOR_IDLE_MINUTES)"
    )


def _applied(ctx: ActionContext, name: str, kept: bool) -> str | None:
    """None if the endpoint now reads as asked; else why not (Azure ML may apply the change a moment later)."""
    after = ctx.workspace.get_endpoint(name)
    if after is not None and is_truthy(tag(after.tags, KEEP_TAG)) == kept:
        return None
    return (
        f"asked Azure ML to {'tag' if kept else 'untag'} endpoint {name}, but it does not show yet; "
        f"check in a minute (the janitor reads the tag as it is when it runs)"
    )


def _note(
    ctx: ActionContext,
    entry: LedgerEntry | None,
    change: Callable[[dict[str, Any]], Any],
    at: datetime,
    action: str = upload_history.KEEP,
) -> None:
    """Record a keep or release in the ledger row, its history and the report (the tag stays the truth the
    janitor reads; this is for `chatft status` and the report's reader). Best effort: a row that keeps changing
    is left."""
    if entry is None:
        return

    def noted(e: LedgerEntry) -> None:
        change(e.deploy)
        upload_history.add(e, action, at, endpoint=e.deploy.get("endpoint"), by=f"chatft {action}")

    saved = _save(ctx, entry, noted)
    if saved is None:
        return
    summary = deployment_summary(saved)
    kept = saved.deploy.get("kept")
    if kept:
        summary["kept"] = (
            f"{kept['at']}: tagged {KEEP_TAG}=true by {kept['by']}; the idle-endpoint janitor never removes it"
        )
    update_report(ctx.store, dataset_prefix(saved.key.dataset, saved.key.sha256), "deployment", summary)


def _save(ctx: ActionContext, entry: LedgerEntry, change: Callable[[LedgerEntry], Any]) -> LedgerEntry | None:
    return change_and_save(ctx.ledger, entry, change, SAVE_TRIES)


# --- retire: the janitor's delete, asked for by a person ---


def retire(ctx: ActionContext, query: str, *, force: bool = False, reason: str = "") -> Outcome:
    """Delete the endpoint now, through the janitor's safe path: ours only; a kept endpoint only with
    `force`; the ledger row RETIRING (which also takes it from the reconciler) before the delete is asked,
    RETIRED once the endpoint is seen gone; the report says who retired it and why."""
    subject = find(ctx, query)
    entry, endpoint = subject.entry, subject.endpoint
    if entry is not None and entry.status is Status.RETIRED:
        when = (entry.deploy.get("retired") or {}).get("confirmed_gone_at") or entry.updated_at
        return Outcome(f"{subject.label} is already retired ({when}): nothing to do", changed=False)
    if endpoint is None and (entry is None or entry.status not in (Status.LIVE, Status.RETIRING, *DEPLOYMENT_ACTIVE)):
        status = entry.status.value if entry is not None else "unknown"
        return Outcome(f"{subject.label} has no endpoint (status {status}): nothing to retire", changed=False)
    forced = ""
    if endpoint is not None:
        if not is_true(tag(endpoint.tags, MANAGED_TAG)):
            raise Refused(
                f"endpoint {endpoint.name} was not created by chatft (no {MANAGED_TAG}=true tag): chatft retires only "
                "its own endpoints; delete it yourself if you mean to"
            )
        key = _keep_key(endpoint.tags)
        if key is not None and is_truthy(endpoint.tags[key]):
            if not force:
                raise Refused(
                    f"endpoint {endpoint.name} is kept ({key}={endpoint.tags[key]}): {chatft('release', subject.query)} "
                    f"first, or {chatft('retire', subject.query, '--force')}"
                )
            forced = f" (--force: it was tagged {key}={endpoint.tags[key]})"
    why = "retired by chatft retire" + (f": {reason.strip()}" if reason.strip() else "") + forced
    now = ctx.now()
    jctx = JanitorContext(ctx.settings, ctx.workspace, None, ctx.ledger, ctx.store, now=ctx.now)  # type: ignore[arg-type]  # no metrics read
    if entry is not None:
        entry = _save(ctx, entry, lambda e: _mark_retiring(e, why, now))  # first: the reconciler stops owning it
        if entry is None:
            raise Refused(f"{subject.label} kept changing while it was being retired: run the command again")
    deleting = endpoint is not None and (endpoint.provisioning_state or "").lower() == "deleting"
    error = None
    if forced and endpoint is not None and not deleting:
        # drop the keep tag first: if the delete then fails, the janitor (which never touches a kept
        # endpoint) asks again on every run instead of leaving a GPU endpoint billing
        try:
            ctx.workspace.set_endpoint_tags(endpoint.name, _without_keep(dict(endpoint.tags)))
        except Exception as exc:
            log_step("endpoint_action.unkeep_failed", endpoint=endpoint.name, error=f"{type(exc).__name__}: {exc}")
    if endpoint is not None and not deleting:
        try:
            ctx.workspace.begin_delete_endpoint(endpoint.name)
        except Exception as exc:
            if entry is None:
                raise
            error = f"{type(exc).__name__}: {exc}"
            log_step("endpoint_action.delete_failed", endpoint=endpoint.name, error=error, level=logging.ERROR)
    unannounced = False
    if entry is not None:
        asked = endpoint is not None and not deleting
        saved = _save(ctx, entry, lambda e: _record_request(e, error, asked))
        entry = saved or entry
        report_retirement(jctx, entry, now, "retiring")
        confirm_retired(jctx, {e.name for e in ctx.workspace.list_endpoints()}, now)
        unannounced = publish_key(ctx.ledger, ctx.events, entry.key, ctx.store) is False
        entry = ctx.ledger.get(entry.key) or entry
    log_step("endpoint_action.retire", endpoint=subject.name, reason=why, error=error, cid=entry.cid if entry else None)
    if error:
        return Outcome(
            f"Azure ML refused to delete endpoint {subject.name} ({error}); {subject.label} is recorded as retiring, "
            f"so the janitor asks again on every run (run {chatft('retire', subject.query, *(['--force'] if forced else []))} "
            "to ask now)",
            ok=False,
        )
    if entry is None:
        gone = ctx.workspace.get_endpoint(subject.name) is None
        return Outcome(f"endpoint {subject.name} {'deleted' if gone else 'is being deleted'}: {why}")
    if entry.status is Status.RETIRED:
        return Outcome(
            f"{subject.label}: endpoint {subject.name} deleted, {why}" + (UNANNOUNCED if unannounced else "")
        )
    return Outcome(
        f"{subject.label}: deleting endpoint {subject.name} ({why}); the next janitor run confirms it is gone "
        f"and records it as retired"
    )


def _mark_retiring(entry: LedgerEntry, why: str, now: datetime) -> None:
    previous = entry.deploy.get("retired") or {}
    entry.status, entry.updated_at = Status.RETIRING, now
    entry.deploy["retired"] = {
        "at": previous.get("at", now.isoformat()),
        "reason": why,
        "by": "chatft retire",
        "delete_requests": previous.get("delete_requests", 0),
        "last_error": previous.get("last_error"),
    }
    retired = entry.deploy["retired"]
    upload_history.add(
        entry, upload_history.RETIRE, retired["at"], endpoint=entry.deploy.get("endpoint"), by=retired["by"], detail=why
    )


def _record_request(entry: LedgerEntry, error: str | None, asked: bool) -> None:
    retired = entry.deploy.setdefault("retired", {})
    retired["delete_requests"] = retired.get("delete_requests", 0) + (1 if asked else 0)
    retired["last_error"] = error


# --- redeploy: the registered model, back through the reconciler ---


def redeploy(ctx: ActionContext, query: str, *, skip_gate: bool = False) -> Outcome:
    """Deploy a retired, held (or deploy_failed) upload's registered model again, without retraining: the row goes
    back to `registered` at the first step (check_sku), exactly as a re-upload of a retired file does, and the
    next reconciler tick takes it from there. `skip_gate`: the gates (DEPLOY_MAX_EVAL_LOSS, EVAL_MIN_TOKEN_F1)
    neither hold nor retire this deployment; its evaluation still runs and is reported."""
    subject = find(ctx, query)
    entry = subject.entry
    if entry is None:
        raise Refused(
            f"endpoint {subject.name} belongs to no upload in the ledger: there is no registered model to redeploy"
        )
    for _ in range(SAVE_TRIES):
        nothing = _nothing_to_redeploy(subject, entry)
        if nothing is not None:
            return nothing
        now = ctx.now()
        previous = entry.deploy
        model = {k: previous[k] for k in MODEL_FIELDS}
        after = previous.get("retired") or {
            "status": entry.status.value,
            "error": previous.get("error") or _gate_reason(previous) or entry.error,
        }
        if entry.status is Status.LIVE:  # its endpoint is gone: that deployment ended, announced as retired
            after = {
                "at": now.isoformat(),
                "reason": f"{GONE} (found gone by chatft redeploy)",
                "by": "chatft redeploy",
            }
        start_deployment(entry, ctx.settings, now, **model)
        entry.deploy["redeployed_after"] = after
        entry.deploy["redeployed_by"] = "chatft redeploy" + (" --skip-gate" if skip_gate else "")
        if skip_gate:
            entry.deploy["skip_gate"] = f"chatft redeploy --skip-gate at {now.isoformat()}"
        upload_history.archive(entry, entry.deploy)  # the redeploy, and the retirement it follows
        entry.error = ""
        if ctx.ledger.save(entry):
            break
        fresh = ctx.ledger.get(entry.key)
        if fresh is None:
            raise Refused(f"{subject.label} disappeared from the ledger")
        entry = fresh
    else:
        raise Refused(f"{subject.label} kept changing while it was being redeployed: run the command again")
    version = f"{model['model_name']}:{model['model_version']}"
    summary = deployment_summary(entry)
    summary["redeploy"] = (
        f"{now.isoformat()}: requested by chatft redeploy; model {version} deploys again without retraining"
    )
    update_report(ctx.store, dataset_prefix(entry.key.dataset, entry.key.sha256), "deployment", summary)
    unannounced = publish_key(ctx.ledger, ctx.events, entry.key, ctx.store) is False
    log_step("endpoint_action.redeploy", cid=entry.cid, model=version, endpoint=model["endpoint"])
    gates = "; its gates are skipped (--skip-gate): it goes live whatever its evaluation" if skip_gate else ""
    if not skip_gate and _gate_reason(previous):
        gates = (
            f"; the gate that stopped it applies again ({_gate_reason(previous)}): add --skip-gate to deploy it anyway"
        )
    return Outcome(
        f"{subject.label}: redeploying model {version} to endpoint {model['endpoint']} without retraining{gates}; "
        "the next reconciler tick starts it" + (UNANNOUNCED if unannounced else "")
    )


def _gate_reason(deploy: dict[str, Any]) -> str:
    """Why a gate stopped the previous deployment (shared.flows.evaluation), or ""."""
    gated = deploy.get("gated")
    return str(gated.get("reason") or "") if isinstance(gated, dict) else ""


def _endpoint_gone(subject: Subject, entry: LedgerEntry) -> bool:
    """The row's endpoint was looked up (find: get_endpoint, None only on a 404) and is not there."""
    name = entry.deploy.get("endpoint")
    return (
        bool(name)
        and subject.name == name
        and subject.endpoint is None
        and all(entry.deploy.get(k) for k in MODEL_FIELDS)
    )


def _nothing_to_redeploy(subject: Subject, entry: LedgerEntry) -> Outcome | None:
    """None if the upload can be redeployed; an Outcome if there is nothing to do; Refused if it cannot be."""
    status, d = entry.status, entry.deploy
    if status is Status.LIVE and _endpoint_gone(subject, entry):
        return None  # deleted outside chatft (the workspace answered 404): the row's `live` is stale
    if status is Status.LIVE:
        return Outcome(
            f"{subject.label} is live at {d.get('scoring_uri') or d.get('endpoint')}: nothing to do", changed=False
        )
    if status in DEPLOYMENT_ACTIVE:
        return Outcome(
            f"{subject.label} is already deploying (step {d.get('step', 'check_sku')}): nothing to do", changed=False
        )
    if status is Status.RETIRING:
        raise Refused(
            f"{subject.label}'s endpoint {d.get('endpoint')} is still being deleted: run `chatft redeploy "
            f"{subject.query}` again once the janitor has confirmed it retired"
        )
    if status in (Status.RETIRED, Status.DEPLOY_FAILED, Status.HELD) and all(d.get(k) for k in MODEL_FIELDS):
        return None
    if d.get("registration_failed"):
        raise Refused(
            f"{subject.label}: job {entry.job_name} completed but its model was never registered "
            f"({d['registration_failed']}); fix that, then upload the same file again to register it without retraining"
        )
    if status in (Status.CLAIMED, Status.SUBMITTED, Status.RETRYABLE):
        raise Refused(
            f"{subject.label} has no registered model yet (status {status.value}, job {entry.job_name or 'not yet submitted'}): "
            "it deploys by itself when its training job completes"
        )
    raise Refused(
        f"{subject.label} was never registered as a model (status {status.value}"
        + (f": {entry.error}" if entry.error else "")
        + "): nothing to redeploy; fix the cause and upload the file again to train it"
    )
