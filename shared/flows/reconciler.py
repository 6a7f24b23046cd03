"""Move each upload's deployment forward, one idempotent step at a time (the timer's singleton job).

The notebook's steps as a state machine kept in the ledger (`entry.deploy["step"]`):

    check_sku -> create_endpoint -> wait_endpoint -> create_deployment -> wait_deployment
              -> set_traffic -> wait_traffic -> smoke_test -> evaluate -> live
    check_sku, final eval_loss above DEPLOY_MAX_EVAL_LOSS -> held (nothing created)
    evaluate, token F1 below EVAL_MIN_TOKEN_F1 -> gate_retire (delete asked) -> retiring (the janitor's from there)
    any permanent failure or the deadline -> cleanup (delete the endpoint) -> deploy_failed
    registered, past MAX_LIVE_ENDPOINTS or the budget -> deploy_queued (nothing created; released in order)

`evaluate` scores the upload's held-out conversations a bounded time per tick (shared.flows.evaluation).

Every step first looks at what exists, so re-running it after a crash creates nothing twice.
Long-running operations are started and never awaited: a pending resource means "look again
next tick". Each transition is saved with the row's ETag, so a racing worker cannot overwrite it.

Nothing billable is created from a stale row: a step first claims the row (an ETag save recording
what it is about to create, `deploy["creating"]`), so a worker whose row was retired or moved on
meanwhile stops before its request; one that loses the row after its request deletes what it made
if the row no longer deploys that endpoint. The janitor removes any endpoint of ours that no row
owns (shared.domain.janitor), whatever race comes next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import orjson

from shared.azure.azureml.errors import is_transient
from shared.azure.scoring import ANSWER_PREVIEW, SmokeError
from shared.domain.deploy.chat_turns import smoke_prompt
from shared.domain.deploy.sku import NoInferenceSize, deploy_instance_type
from shared.domain.deploy.states import Progress, progress
from shared.domain.finetune.compute import allowed_sizes
from shared.domain.ledger import DEPLOYMENT_ACTIVE, LedgerEntry, Status
from shared.domain.naming import dataset_prefix
from shared.flows.budget import warn_budget
from shared.flows.deploy_context import DeployContext
from shared.flows.deploy_queue import admit, release
from shared.flows.deployment_start import deployment_summary
from shared.flows.evaluation import evaluate_step, gate_retire_step, loss_gate_step
from shared.flows.job_poll import poll_quiet_jobs
from shared.flows.job_queue import submit_queued
from shared.flows.lifecycle_events import publish_all_due, publish_due
from shared.flows.reports import update_report
from shared.flows.stale_claims import resubmit_stale_claims, sync_submission_reports
from shared.flows.training_report import retry_pending_training
from shared.logs import log_step


class PermanentDeployError(Exception):
    """Retrying cannot help: clean up and record why."""


class Superseded(Exception):
    """The row changed since this worker read it (a retire, another worker): it must not create anything."""


def _claim(ctx: DeployContext, entry: LedgerEntry, what: str) -> None:
    """Record what is about to be created with an ETag save before the request that bills: a worker
    holding a stale row fails here, before anything exists."""
    entry.deploy["creating"] = {"what": what, "at": ctx.now().isoformat()}
    if not ctx.ledger.save(entry):
        raise Superseded(what)


# --- the steps: each returns the next step, or None to wait for a long-running operation ---


def _check_sku(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    """Settle the VM size once, before anything billable exists: DEPLOY_INSTANCE_TYPE if set (and the model
    allows it), else the cheapest size the model itself recommends for inference; the report says which and why.
    First the DEPLOY_MAX_EVAL_LOSS gate: a model it holds is never deployed (wait: its metrics are being read)."""
    gate = loss_gate_step(ctx, entry)
    if gate != "pass":
        return gate
    d = entry.deploy
    tags = ctx.workspace.foundation_model_tags(d["base_model"])
    try:
        chosen = deploy_instance_type(d.get("instance_type") or "", tags, d["base_model"], today=ctx.now().date())
    except NoInferenceSize as exc:
        raise PermanentDeployError(str(exc)) from exc
    allowed = allowed_sizes(tags, "inference_compute_allow_list")
    if allowed is not None and chosen.size.lower() not in allowed:
        raise PermanentDeployError(
            f"DEPLOY_INSTANCE_TYPE {chosen.size} is not in {d['base_model']}'s inference_compute_allow_list "
            f"({', '.join(allowed)})"
        )
    d["instance_type"], d["instance_type_reason"] = chosen.size, chosen.reason
    log_step("deploy.size", cid=entry.cid, endpoint=d["endpoint"], instance_type=chosen.size, why=chosen.reason)
    return "create_endpoint"


def _create_endpoint(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    d = entry.deploy
    if ctx.workspace.get_endpoint(d["endpoint"]) is None:
        _claim(ctx, entry, f"endpoint {d['endpoint']}")
        tags = {
            "chatft_managed": "true",
            "chatft_upload": entry.key.sha256,
            "chatft_dataset": entry.key.dataset,
            "chatft_job": entry.job_name,
            "chatft_model": d["model_id"],
            "chatft_cid": entry.cid,
        }
        description = f"chatft: {d['model_name']}:{d['model_version']} fine-tuned on {entry.source}"
        ctx.workspace.begin_create_endpoint(name=d["endpoint"], description=description, tags=tags)
    return "wait_endpoint"


def _wait_endpoint(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    endpoint = ctx.workspace.get_endpoint(entry.deploy["endpoint"])
    if endpoint is None:
        return "create_endpoint"
    state = progress(endpoint.provisioning_state)
    if state is Progress.FAILED:
        raise PermanentDeployError(f"endpoint {endpoint.name} provisioning {endpoint.provisioning_state}")
    return "create_deployment" if state is Progress.DONE else None


def _create_deployment(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    d = entry.deploy
    if ctx.workspace.get_deployment(d["endpoint"], d["deployment"]) is None:
        _claim(ctx, entry, f"deployment {d['deployment']} on endpoint {d['endpoint']}")
        ctx.workspace.begin_create_deployment(
            endpoint=d["endpoint"], name=d["deployment"], model_id=d["model_id"], instance_type=d["instance_type"]
        )
    return "wait_deployment"


def _wait_deployment(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    d = entry.deploy
    deployment = ctx.workspace.get_deployment(d["endpoint"], d["deployment"])
    if deployment is None:
        return "create_deployment"
    state = progress(deployment.provisioning_state)
    if state is Progress.FAILED:
        raise PermanentDeployError(f"deployment {d['deployment']} provisioning {deployment.provisioning_state}")
    return "set_traffic" if state is Progress.DONE else None


def _wanted_traffic(entry: LedgerEntry) -> dict[str, int]:
    return {entry.deploy["deployment"]: 100}


def _set_traffic(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    endpoint = ctx.workspace.get_endpoint(entry.deploy["endpoint"])
    if endpoint is None:
        raise PermanentDeployError(f"endpoint {entry.deploy['endpoint']} disappeared")
    if endpoint.traffic != _wanted_traffic(entry):
        ctx.workspace.set_endpoint_traffic(endpoint.name, _wanted_traffic(entry))
    return "wait_traffic"


def _wait_traffic(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    endpoint = ctx.workspace.get_endpoint(entry.deploy["endpoint"])
    if endpoint is None:
        raise PermanentDeployError(f"endpoint {entry.deploy['endpoint']} disappeared")
    state = progress(endpoint.provisioning_state)
    if state is Progress.FAILED:
        raise PermanentDeployError(f"endpoint {endpoint.name} update {endpoint.provisioning_state}")
    if state is Progress.PENDING:
        return None
    return "smoke_test" if endpoint.traffic == _wanted_traffic(entry) else "set_traffic"


def _smoke_test(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    d = entry.deploy
    endpoint = ctx.workspace.get_endpoint(d["endpoint"])
    if endpoint is None or not endpoint.scoring_uri:
        raise PermanentDeployError(f"endpoint {d['endpoint']} has no scoring URI")
    messages = _test_conversation(ctx, entry)
    key = ctx.workspace.endpoint_key(endpoint.name)
    try:
        result = ctx.scorer(
            endpoint.scoring_uri,
            key,
            d["deployment"],
            messages,
            float(ctx.settings.smoke_timeout_seconds),
            shape=d.get("input_shape"),
        )
    except SmokeError as exc:
        if exc.permanent:  # the server refuses this request: waiting for the deadline cannot help
            raise PermanentDeployError(f"the endpoint rejected the smoke test: {exc}") from exc
        # a fresh deployment can take a while to answer: retry until the deadline
        d["last_error"] = str(exc)
        log_step("deploy.smoke_retry", cid=entry.cid, endpoint=endpoint.name, error=str(exc), level=logging.WARNING)
        return None
    d["scoring_uri"] = endpoint.scoring_uri
    d["input_shape"] = result.shape.value  # what this deployment reads: every later score sends it alone
    d["smoke"] = {
        "latency_ms": result.latency_ms,
        "answer": result.answer[:ANSWER_PREVIEW],
        "prompt": messages[-1]["content"][:200],
    }
    return "evaluate"


def _test_conversation(ctx: DeployContext, entry: LedgerEntry) -> list[dict[str, str]]:
    """The first conversation of the prepared test split (validation or train if test is empty),
    cut to what a chat-completion server accepts (see shared.domain.deploy.chat_turns)."""
    prefix = dataset_prefix(entry.key.dataset, entry.key.sha256)
    for split in ("test", "validation", "train"):
        line = ctx.store.read_first_line(f"{prefix}/{split}.jsonl")
        if not line:
            continue
        try:
            messages = smoke_prompt(orjson.loads(line))
        except orjson.JSONDecodeError:
            messages = None
        if messages:
            return messages
    raise PermanentDeployError(f"no prepared conversation with a user turn found under {prefix} for the smoke test")


def _cleanup(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    ctx.workspace.begin_delete_endpoint(entry.deploy["endpoint"])
    return "deleted"


STEPS: dict[str, Callable[[DeployContext, LedgerEntry], str | None]] = {
    "check_sku": _check_sku,
    "create_endpoint": _create_endpoint,
    "wait_endpoint": _wait_endpoint,
    "create_deployment": _create_deployment,
    "wait_deployment": _wait_deployment,
    "set_traffic": _set_traffic,
    "wait_traffic": _wait_traffic,
    "smoke_test": _smoke_test,
    "evaluate": evaluate_step,
    "gate_retire": gate_retire_step,
    "cleanup": _cleanup,
}
TERMINAL = {"live": Status.LIVE, "deleted": Status.DEPLOY_FAILED, "retiring": Status.RETIRING, "held": Status.HELD}


def advance(entry: LedgerEntry, ctx: DeployContext, max_steps: int = 12) -> str:
    """Run steps until one has to wait; save every transition. Returns where it stopped."""
    for _ in range(max_steps):
        if entry.status not in DEPLOYMENT_ACTIVE:
            return entry.status.value
        if entry.status is Status.REGISTERED:  # nothing created yet: MAX_LIVE_ENDPOINTS and the budget first
            waiting = admit(ctx, entry)
            if waiting is not None:
                return waiting
        d = entry.deploy
        step = d.get("step", "check_sku")
        now = ctx.now()
        before = dict(d)
        if step != "cleanup" and now > datetime.fromisoformat(d["deadline"]):
            d["error"] = f"not live by the deadline ({ctx.settings.deploy_deadline_minutes} min) while at step {step}"
            following: str | None = "cleanup"
        else:
            following = _run_step(step, ctx, entry)
            if following == SUPERSEDED:
                return MOVED_ON
            if following in (None, "transient"):
                if d != before:  # keep what the step learned (e.g. the smoke test's last error)
                    ctx.ledger.save(entry)
                return f"waiting at {step}" + (" (transient error)" if following else "")
        if not _transition(entry, following, ctx, now):
            if d.get("creating") is not before.get("creating"):  # this step claimed (a new dict), created, lost
                _delete_if_unowned(ctx, entry)
            return MOVED_ON
    return f"stopped after {max_steps} steps"


SUPERSEDED = "superseded"
MOVED_ON = "another worker moved this deployment on"


def _delete_if_unowned(ctx: DeployContext, entry: LedgerEntry) -> None:
    """The row was taken between this worker's claim and its save (a retire that found nothing to delete
    yet): if it no longer deploys this endpoint, delete what was just created rather than leave it billing."""
    name = entry.deploy["endpoint"]
    fresh = ctx.ledger.get(entry.key)
    owned = (*DEPLOYMENT_ACTIVE, Status.LIVE)
    if fresh is not None and fresh.status in owned and fresh.deploy.get("endpoint") == name:
        return
    log_step(
        "deploy.orphan_deleted",
        cid=entry.cid,
        endpoint=name,
        status=fresh.status.value if fresh else None,
        level=logging.WARNING,
    )
    try:
        ctx.workspace.begin_delete_endpoint(name)
    except Exception as exc:  # the janitor removes it once idle: an endpoint no row owns is an orphan
        log_step(
            "deploy.orphan_delete_failed", endpoint=name, error=f"{type(exc).__name__}: {exc}", level=logging.ERROR
        )


def _run_step(step: str, ctx: DeployContext, entry: LedgerEntry) -> str | None:
    d = entry.deploy
    try:
        return STEPS[step](ctx, entry)
    except Superseded:
        return SUPERSEDED
    except PermanentDeployError as exc:
        d["error"] = str(exc)
    except Exception as exc:
        if is_transient(exc):
            d["last_error"] = f"{type(exc).__name__}: {exc}"
            log_step(
                "deploy.transient",
                cid=entry.cid,
                at=step,
                error=f"{type(exc).__name__}: {exc}",
                level=logging.WARNING,
            )
            return "transient"
        if step == "cleanup":
            raise  # cannot even delete: leave the row for the next tick, loudly
        logging.getLogger("chatft").exception("deployment step %s failed", step)
        d["error"] = f"{type(exc).__name__}: {exc}"
    return "cleanup"


def _transition(entry: LedgerEntry, following: str, ctx: DeployContext, now: datetime) -> bool:
    d = entry.deploy
    previous = d.get("step")
    d["step"], d["updated_at"] = following, now.isoformat()
    entry.status = TERMINAL.get(following, Status.DEPLOYING)
    entry.updated_at = now
    if following == "live":
        d["live_at"] = now.isoformat()
    if following == "deleted":
        entry.error = d.get("error", "")
    if not ctx.ledger.save(entry):
        return False
    log_step(
        "deploy.step",
        cid=entry.cid,
        endpoint=d["endpoint"],
        to=following,
        previous=previous,
        status=entry.status.value,
    )
    # every transition, so the report shows where a deployment is (and a redeployment no longer says "retired")
    update_report(
        ctx.store, dataset_prefix(entry.key.dataset, entry.key.sha256), "deployment", deployment_summary(entry)
    )
    publish_due(entry, ctx.ledger, ctx.events, ctx.store)  # best effort; the tick's sweep retries
    return True


def reconcile(ctx: DeployContext) -> list[tuple[str, str]]:
    """One tick: resubmit stale claims, settle quiet jobs whose events never came, then move every
    deployment in progress; a failing row never stops the others."""
    resubmitted = resubmit_stale_claims(ctx, ctx.now())
    synced = sync_submission_reports(ctx)
    polled = poll_quiet_jobs(ctx)
    training = retry_pending_training(ctx)
    dequeued = submit_queued(ctx)  # after the poll: a job it settled frees its slot this tick
    released = release(ctx)
    warned = warn_budget(ctx)
    results = []
    for entry in ctx.ledger.with_status(*DEPLOYMENT_ACTIVE):
        try:
            where = advance(entry, ctx)
        except Exception as exc:
            logging.getLogger("chatft").exception("reconciling %s failed", entry.deploy.get("endpoint"))
            where = f"error: {type(exc).__name__}"
        results.append((entry.deploy.get("endpoint", ""), where))
    events = publish_all_due(ctx.ledger, ctx.events, ctx.now(), ctx.store)
    log_step(
        "reconcile.tick",
        deployments=len(results),
        results=results,
        resubmitted=resubmitted or None,
        reports_synced=synced or None,
        jobs_polled=polled or None,
        training_reports_retried=training or None,
        queue_submitted=dequeued or None,
        deployments_released=released or None,
        budget_warning=warned,
        events_published=events or None,
    )
    return results
