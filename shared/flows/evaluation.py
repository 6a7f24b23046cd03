"""The deployment's gates: score the upload's held-out conversations on the endpoint that just passed the smoke
test (and retire it at once below EVAL_MIN_TOKEN_F1), and hold a model whose training ended above
DEPLOY_MAX_EVAL_LOSS before anything billable exists. Steps of the reconciler (shared.flows.reconciler).

The reconciler never waits on a long operation, and scoring fifty conversations on a GPU endpoint can take
minutes: each tick scores for at most TICK_BUDGET seconds, CONCURRENCY requests at a time (a request in flight
then still finishes, bounded by SMOKE_TIMEOUT_SECONDS), keeps what it scored in `<dataset>/<sha16>/evaluation.json`,
and the next tick goes on from there. The samples are read from the split once, on the first tick, into that file,
so later ticks read one small blob; the file belongs to one deployment (its `started_at`): a redeployment starts over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import orjson

from shared.domain.evaluation import (
    examples,
    f1_gate,
    figures,
    final_eval_loss,
    held_out_pair,
    loss_gate,
)
from shared.domain.ledger import LedgerEntry
from shared.domain.naming import dataset_prefix
from shared.flows.deploy_context import DeployContext, Scorer
from shared.flows.reports import update_report
from shared.flows.training_report import PENDING
from shared.logs import log_step

CONCURRENCY = 4
"""Requests in flight at once: enough to hide one slow answer, few enough not to queue on one GPU instance."""
TICK_BUDGET = 60.0
"""Seconds of scoring a tick starts new requests for. The reconciler runs every 2 minutes (DEPLOY_RECONCILE_SCHEDULE)
within the Functions host's 10-minute timeout (host.json), and other deployments share the tick."""
RESULTS_FILE = "evaluation.json"
SPLITS = ("test", "validation")
"""Held out from training, in the order tried: the test split, else the validation split (never seen as training)."""
SECTION = "evaluation"
GATED = "gated"
"""`entry.deploy` key: which gate stopped this deployment (`phase`: evaluation or training), why, and when."""
SKIP_GATE = "skip_gate"
"""`entry.deploy` key: `chatft redeploy --skip-gate` asked for this deployment to go live whatever its gates say."""
TEXT_MAX = 50_000
"""Characters of an answer kept (a model's answer is bounded by max_new_tokens; a broken server's need not be)."""


@dataclass(frozen=True)
class Target:
    """Where and how to score: the same request the smoke test sent, in the shape it found the deployment reads."""

    scoring_uri: str
    key: str
    deployment: str
    shape: str | None
    timeout: float


def _score_one(scorer: Scorer, target: Target, prompt: list[dict[str, str]]) -> dict[str, Any]:
    try:
        result = scorer(target.scoring_uri, target.key, target.deployment, prompt, target.timeout, shape=target.shape)
    except Exception as exc:  # a failed answer is a figure (the failure rate), not the step's error
        return {"answer": None, "error": f"{type(exc).__name__}: {exc}"[:300], "latency_ms": None}
    return {"answer": result.answer[:TEXT_MAX], "error": None, "latency_ms": result.latency_ms}


def score_samples(
    scorer: Scorer,
    target: Target,
    samples: list[dict[str, Any]],
    pending: list[int],
    *,
    concurrency: int = CONCURRENCY,
    budget: float = TICK_BUDGET,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Score `samples[i]` for each i in `pending`, at most `concurrency` at once; after `budget` seconds no new
    request starts (the first `concurrency` always do, so every call makes progress). Each scored sample gets its
    answer (or error) and latency in place. Returns how many were scored."""
    started, todo, scored = clock(), iter(pending), 0
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="chatft-eval") as pool:
        running: dict[Future[dict[str, Any]], int] = {}

        def start_next() -> None:
            index = next(todo, None)
            if index is not None:
                running[pool.submit(_score_one, scorer, target, samples[index]["prompt"])] = index

        for _ in range(max(1, concurrency)):
            start_next()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                samples[running.pop(future)].update(future.result())
                scored += 1
                if clock() - started < budget:
                    start_next()
    return scored


def read_samples(store: Any, prefix: str, limit: int) -> tuple[str, list[dict[str, Any]]] | None:
    """(split, samples): the first `limit` conversations of the first held-out split that has any (prompt and
    reference, see shared.domain.evaluation.held_out_pair); None when no split has one."""
    for split in SPLITS:
        raw = store.read_bytes(f"{prefix}/{split}.jsonl")
        samples: list[dict[str, Any]] = []
        for line in (raw or b"").splitlines():
            if len(samples) >= limit:
                break
            try:
                pair = held_out_pair(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
            if pair is not None:
                samples.append({"prompt": pair[0], "reference": pair[1]})
        if samples:
            return split, samples
    return None


def _state(ctx: DeployContext, entry: LedgerEntry, prefix: str) -> dict[str, Any] | None:
    """This deployment's results so far, or fresh samples from the split (None: nothing held out to score)."""
    d = entry.deploy
    try:
        raw = ctx.store.read_bytes(f"{prefix}/{RESULTS_FILE}")
        saved = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        saved = None
    if isinstance(saved, dict) and saved.get("deployment") == d.get("started_at") and saved.get("samples"):
        return saved
    found = read_samples(ctx.store, prefix, ctx.settings.eval_samples)
    if found is None:
        return None
    split, samples = found
    return {"deployment": d.get("started_at"), "endpoint": d.get("endpoint"), "split": split, "samples": samples}


def _what(state: dict[str, Any]) -> str:
    return (
        f"{len(state['samples'])} conversations of the {state['split']} split (held out from training): the prompt is "
        "every turn before the last assistant turn, the reference is that turn"
    )


def evaluate_step(ctx: DeployContext, entry: LedgerEntry, *, budget: float | None = None) -> str | None:
    """The reconciler's `evaluate` step: None while samples are left (next tick goes on), then "live", or
    "gate_retire" when the token F1 is below EVAL_MIN_TOKEN_F1 (and no --skip-gate)."""
    d = entry.deploy
    prefix = dataset_prefix(entry.key.dataset, entry.key.sha256)
    state = _state(ctx, entry, prefix)
    if state is None:
        d[SECTION] = {"samples": 0}
        note = "no conversation of the test or validation split ends with an assistant turn to compare with"
        update_report(ctx.store, prefix, SECTION, {"status": "not evaluated", "note": note + "; no gate applied"})
        return "live"
    samples = state["samples"]
    pending = [i for i, s in enumerate(samples) if "answer" not in s]
    if pending:
        target = Target(
            d["scoring_uri"],
            ctx.workspace.endpoint_key(d["endpoint"]),
            d["deployment"],
            d.get("input_shape"),
            float(ctx.settings.smoke_timeout_seconds),
        )
        started = time.monotonic()
        scored = score_samples(ctx.scorer, target, samples, pending, budget=TICK_BUDGET if budget is None else budget)
        ctx.store.put_bytes(f"{prefix}/{RESULTS_FILE}", orjson.dumps(state), "application/json")
        done = len(samples) - len(pending) + scored
        log_step(
            "deploy.evaluation",
            cid=entry.cid,
            endpoint=d["endpoint"],
            scored=scored,
            done=done,
            of=len(samples),
            seconds=round(time.monotonic() - started, 2),
        )
        if done < len(samples):
            d[SECTION] = {"scored": done, "samples": len(samples)}
            progress = f"{done} of {len(samples)} scored; the next reconciler tick goes on"
            update_report(
                ctx.store, prefix, SECTION, {"status": "evaluating", "what": _what(state), "progress": progress}
            )
            return None
    figs = figures(samples)
    d[SECTION] = {**figs, "split": state["split"]}
    reason = f1_gate(figs, ctx.settings.eval_min_token_f1)
    skipped = bool(reason) and bool(d.get(SKIP_GATE))
    section = {"status": "evaluated", "what": _what(state), **figs, "gate": _gate_line(ctx, reason, skipped)}
    update_report(ctx.store, prefix, SECTION, {**section, "examples": examples(samples)})
    if reason and not skipped:
        d[GATED] = {"phase": "evaluation", "reason": reason, "at": ctx.now().isoformat()}
        log_step("deploy.gated", cid=entry.cid, endpoint=d["endpoint"], reason=reason, level=logging.WARNING)
        return "gate_retire"
    return "live"


def _gate_line(ctx: DeployContext, reason: str | None, skipped: bool) -> str:
    minimum = ctx.settings.eval_min_token_f1
    if minimum == "":
        return "none (EVAL_MIN_TOKEN_F1 is empty)"
    if skipped:
        return f"{reason}; deployed anyway (chatft redeploy --skip-gate)"
    return reason or f"passed (EVAL_MIN_TOKEN_F1 {float(minimum):g})"


def gate_retire_step(ctx: DeployContext, entry: LedgerEntry) -> str:
    """Retire the endpoint that failed its evaluation, the janitor's way: the delete is asked (never awaited), the
    row becomes `retiring` with the reason, and the janitor asks again on every run until it sees it gone
    (then `retired`). The registered model stays: `chatft redeploy --skip-gate` deploys it anyway."""
    d = entry.deploy
    error = None
    try:
        ctx.workspace.begin_delete_endpoint(d["endpoint"])
    except Exception as exc:  # recorded; the janitor asks again (a retiring row's endpoint is deleted on every run)
        error = f"{type(exc).__name__}: {exc}"[:500]
        log_step("deploy.gate_delete_failed", cid=entry.cid, endpoint=d["endpoint"], error=error, level=logging.ERROR)
    previous = d.get("retired") if isinstance(d.get("retired"), dict) else {}
    gated = d.get(GATED) if isinstance(d.get(GATED), dict) else {}
    d["retired"] = {
        "at": previous.get("at", ctx.now().isoformat()),
        "reason": f"failed its evaluation: {gated.get('reason', 'below EVAL_MIN_TOKEN_F1')}",
        "by": "the evaluation gate (EVAL_MIN_TOKEN_F1)",
        "delete_requests": previous.get("delete_requests", 0) + 1,
        "last_error": error,
    }
    return "retiring"


def loss_gate_step(ctx: DeployContext, entry: LedgerEntry) -> str | None:
    """Before anything billable: "pass", None to wait for the job's metrics (being read by the tick), or "held"
    when the final eval_loss is above DEPLOY_MAX_EVAL_LOSS (recorded in `deploy["gated"]`). Unknown metrics
    (none logged, or unreadable after the tick's tries) do not hold: the report's Training section says why."""
    d, maximum = entry.deploy, ctx.settings.deploy_max_eval_loss
    if maximum == "" or d.get(SKIP_GATE):
        return "pass"
    if entry.extra.get(PENDING):
        return None
    prefix = dataset_prefix(entry.key.dataset, entry.key.sha256)
    try:
        raw = ctx.store.read_bytes(f"{prefix}/report.json")
        training = (orjson.loads(raw) if raw else {}).get("training")
    except (orjson.JSONDecodeError, AttributeError):
        training = None
    reason = loss_gate(final_eval_loss(training), maximum)
    if reason is None:
        return "pass"
    d[GATED] = {"phase": "training", "reason": reason, "at": ctx.now().isoformat()}
    log_step("deploy.held", cid=entry.cid, endpoint=d.get("endpoint"), reason=reason, level=logging.WARNING)
    return "held"
