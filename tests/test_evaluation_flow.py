"""Every endpoint is measured on held-out conversations before it goes live, and the gates act on the figures
(issue 20, items 6-8).

The local backend (real scoring-server processes answering with the trained stand-in model) goes live with an
Evaluation section whose token F1 is the one its training job reported on the same test split; through the
function app over the in-memory Azure ML service (the real MLClient, tests/aml_rest.py), a scoring server that
answers nonsense is retired at once by EVAL_MIN_TOKEN_F1 and deployed anyway by `chatft redeploy --skip-gate`,
and DEPLOY_MAX_EVAL_LOSS holds a model whose training ended above it before anything is created.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import shared.entry.app_wiring
from shared.azure.scoring import score
from shared.domain import lifecycle_events as le
from shared.domain.ledger import Status, UploadKey
from shared.domain.naming import dataset_prefix
from shared.domain.upload_stage import Stage, upload_view
from shared.flows import endpoint_actions, evaluation
from shared.flows.deploy_context import DeployContext
from shared.flows.deployment_start import start_deployment
from shared.flows.evaluation import Target, score_samples
from shared.flows.reconciler import reconcile
from tests.deploy_flow import SHA, completed, report, row, run_until, scoring, send, submit, tick
from tests.local_backend_setup import LocalBackend, local_backend
from tests.mlflow_rest import finetune_tree
from tests.scoring_server import ScoringServer

ROOT = Path(__file__).resolve().parent.parent
NONSENSE = "Zebra quantum marmalade."


# --- bounded concurrency and time, against a slow endpoint ---


def _samples(n: int) -> list[dict]:
    return [
        {"prompt": [{"role": "user", "content": f"q{i}"}], "reference": "Lower the learning rate."} for i in range(n)
    ]


def test_scoring_runs_four_at_a_time_and_starts_nothing_after_its_budget() -> None:
    with ScoringServer(key="k", deployment="demo") as server:
        server.delay = 0.3
        target = Target(server.url, "k", "demo", "conversations", 5.0)
        samples = _samples(8)
        started = time.monotonic()
        assert score_samples(score, target, samples, list(range(8)), concurrency=4, budget=60) == 8
        took = time.monotonic() - started
        assert 0.6 <= took < 1.2, took  # two rounds of four, not eight answers one after another (2.4 s)
        assert all(s["answer"] == "Lower the learning rate." and s["latency_ms"] >= 300 for s in samples)

        late = _samples(8)
        started = time.monotonic()
        assert score_samples(score, target, late, list(range(8)), concurrency=4, budget=0.1) == 4
        assert time.monotonic() - started < 0.6  # the first four finish; none starts after the budget
        assert sum("answer" in s for s in late) == 4


def test_a_failed_answer_is_recorded_not_raised() -> None:
    with ScoringServer(key="k", deployment="demo") as server:
        server.fail_next.append(503)
        samples = _samples(2)
        score_samples(score, Target(server.url, "k", "demo", "conversations", 5.0), samples, [0, 1], concurrency=1)
    assert samples[0]["answer"] is None and "HTTP 503" in samples[0]["error"] and samples[1]["answer"]


# --- the local backend, through the reconciler ---


@pytest.fixture
def local(azurite, tmp_path, monkeypatch):
    """The local backend over Azurite: an upload of 600 sample conversations validated and prepared by ingest, a
    stand-in model trained on its train split and registered, its ledger row `registered` (as a finished job
    leaves it). Yields (ctx, key, model, test rows)."""
    with local_backend(azurite, tmp_path, monkeypatch, "eval") as backend:
        yield _registered_upload(backend)


def _registered_upload(backend: LocalBackend) -> tuple[DeployContext, UploadKey, Any, list[dict]]:
    """What `local` yields, built on `backend`."""
    from shared.azure.storage import blob_service, ensure_container
    from shared.flows.ingest import ingest_blob
    from shared.local.retrieval import RetrievalModel

    settings, workspace, ledger = backend.settings, backend.workspace, backend.ledger
    store = shared.entry.app_wiring.prepared_store()
    uploads = blob_service().get_container_client(settings.upload_container)
    ensure_container(uploads)
    data = b"".join((ROOT / "samples" / "chat_sample.jsonl").read_bytes().splitlines(keepends=True)[:600])
    uploads.upload_blob("eval/chats.jsonl", data)
    outcome = ingest_blob(uploads.get_blob_client("eval/chats.jsonl"), settings, store)
    assert outcome.status == "accepted"
    key = UploadKey("eval-chats", outcome.sha256)
    prefix = dataset_prefix(key.dataset, key.sha256)
    train = [json.loads(x) for x in store.read_bytes(f"{prefix}/train.jsonl").splitlines()]
    test = [json.loads(x) for x in store.read_bytes(f"{prefix}/test.jsonl").splitlines()]
    model = RetrievalModel.train(train)
    model.save(workspace.root / "jobs" / "job-eval" / "outputs" / "trained_model", {"job": "job-eval"})
    registered = workspace.register_model(job_name="job-eval", name="m", version="1", description="d", tags={})
    now = datetime.now(timezone.utc)
    claim = ledger.claim(key, upload_etag='"0x1"', source=outcome.source, cid="c0ffee", now=now, stale_after=now - now)
    entry = ledger.get(key)
    entry.job_name = "job-eval"
    start_deployment(
        entry,
        settings,
        now,
        model_id=registered.id,
        model_name=registered.name,
        model_version=registered.version,
        base_model="Phi-4",
        endpoint=f"ep-eval-{backend.suffix[:6]}",
    )
    assert claim.acquired and ledger.save(entry)
    return DeployContext(settings, ledger, workspace, store, score), key, model, test


def _until(ctx: DeployContext, key: UploadKey, statuses: tuple[Status, ...], timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reconcile(ctx)
        entry = ctx.ledger.get(key)
        if entry.status in statuses:
            return entry
        time.sleep(0.1)
    raise AssertionError(f"not {statuses} in time: {entry.status} at {entry.deploy.get('step')}")


def _report(ctx: DeployContext, key: UploadKey, name: str = "report.json"):
    raw = ctx.store.read_bytes(f"{dataset_prefix(key.dataset, key.sha256)}/{name}")
    return json.loads(raw) if name.endswith(".json") else raw.decode()


def test_the_local_endpoint_goes_live_measured_and_agrees_with_its_training_job(local) -> None:
    ctx, key, model, test = local
    entry = _until(ctx, key, (Status.LIVE,))
    figures = entry.deploy["evaluation"]
    trained = model.evaluate(test)  # what the job printed as its test token F1 (shared.local.train_job)
    assert figures["samples"] == trained["examples"] == len(test) <= 50
    assert figures["token_f1"] == trained["token_f1"] > 0.5  # one definition, the same conversations
    assert figures["empty_or_failed"] == 0 and 0 < figures["latency_p50_ms"] <= figures["latency_p95_ms"]
    assert 0 < figures["rouge_l"] <= 1

    section = _report(ctx, key)["evaluation"]
    assert section["status"] == "evaluated" and section["token_f1"] == figures["token_f1"]
    assert [e["which"] for e in section["examples"]] == ["lowest token F1", "middle token F1", "highest token F1"]
    markdown = _report(ctx, key, "report.md")
    assert "## Evaluation" in markdown and "| example | prompt (last user turn) | reference | answer |" in markdown
    assert "Gate: none (EVAL_MIN_TOKEN_F1 is empty)" in markdown

    [live] = [e for e in le.earned(entry) if e.type == le.LIVE]
    assert live.data["evaluation"] == figures  # the chatft.endpoint.live event carries the figures

    view = upload_view(entry, _report(ctx, key), name="eval/chats.jsonl", dataset=key.dataset, sha256=key.sha256)
    assert view.stage is Stage.LIVE and view.token_f1 == figures["token_f1"]
    assert view.latency_p95_ms == figures["latency_p95_ms"]
    assert f"token F1 {figures['token_f1']:.2f}, p95 {figures['latency_p95_ms']} ms" in view.milestones[-1].detail


def test_an_evaluation_longer_than_a_tick_resumes_where_it_stopped(local, monkeypatch) -> None:
    """No tick waits for the whole evaluation: with no time budget each tick scores one batch of four, saves it,
    and the next goes on; no conversation is scored twice."""
    ctx, key, _, test = local
    monkeypatch.setattr(evaluation, "TICK_BUDGET", 0.0)
    progress = []
    deadline = time.monotonic() + 60
    while (entry := ctx.ledger.get(key)).status is not Status.LIVE and time.monotonic() < deadline:
        reconcile(ctx)
        entry = ctx.ledger.get(key)
        if entry.deploy.get("step") == "evaluate":
            progress.append(entry.deploy["evaluation"]["scored"])
            assert _report(ctx, key)["evaluation"]["status"] == "evaluating"
        time.sleep(0.05)
    assert entry.status is Status.LIVE
    assert progress == list(range(4, len(test), 4))  # four more each tick
    counts = json.loads((ctx.workspace.requests_file(entry.deploy["endpoint"])).read_text())
    assert sum(counts.values()) == 1 + len(test)  # the smoke test, then each held-out conversation once


# --- the gates, through the function app over the in-memory Azure ML service ---


@pytest.fixture
def gated(aml, blob_service, storage_env, monkeypatch):
    monkeypatch.setenv("EVAL_MIN_TOKEN_F1", "0.3")
    _reload()
    workspace, _ = aml
    job, tags = submit(blob_service, storage_env, workspace)
    return workspace, job, tags


def _reload() -> None:
    """The settings just changed: the app's cached settings and deploy context read them again."""
    for cached in (shared.entry.app_wiring.settings, shared.entry.app_wiring.deploy_context):
        cached.cache_clear()


def _janitor_run(workspace) -> None:
    """The janitor's run (shared.flows.janitor), as its timer does it: confirms the gated endpoint gone."""
    from shared.azure.metrics import AzureMonitorUsage
    from shared.flows.janitor import JanitorContext, run_janitor
    from tests.fake_monitor import FakeMetricsClient

    usage = AzureMonitorUsage(
        region="westeurope", credential_factory=object, client_factory=FakeMetricsClient().factory
    )
    ctx = JanitorContext(
        shared.entry.app_wiring.settings(),
        shared.entry.app_wiring.workspace(),
        usage,
        shared.entry.app_wiring.ledger(),
        shared.entry.app_wiring.prepared_store(),
    )
    run_janitor(ctx)


def test_a_nonsense_endpoint_is_retired_at_once_and_redeploy_skip_gate_deploys_it(
    gated, blob_service, storage_env
) -> None:
    workspace, job, tags = gated
    with ScoringServer(key="k-123", deployment="demo", answer=NONSENSE) as server:
        workspace.online_endpoints.scoring_uri, workspace.online_endpoints.key = server.url, "k-123"
        send(completed(job, tags))
        run_until(lambda: row().status in (Status.RETIRING, Status.RETIRED))
    entry = row()
    endpoint = entry.deploy["endpoint"]
    gate = entry.deploy["gated"]
    assert gate["phase"] == "evaluation" and "below EVAL_MIN_TOKEN_F1 0.3" in gate["reason"]
    assert entry.deploy["evaluation"]["token_f1"] == 0.0 and "live_at" not in entry.deploy
    assert (
        "delete",
        endpoint,
    ) in workspace.online_endpoints.calls and endpoint not in workspace.online_endpoints.endpoints
    assert entry.deploy["retired"]["by"] == "the evaluation gate (EVAL_MIN_TOKEN_F1)"
    assert len(workspace.models.created) == 1  # the model stays registered

    [failed] = [e for e in le.earned(entry) if e.type == le.DEPLOY_FAILED]
    assert failed.data["phase"] == "evaluation" and failed.data["error"] == gate["reason"]
    assert failed.data["evaluation"]["token_f1"] == 0.0
    assert le.LIVE not in [e.type for e in le.earned(entry)]
    doc = report(blob_service, storage_env)
    assert "below EVAL_MIN_TOKEN_F1" in doc["evaluation"]["gate"] and "--skip-gate" in doc["deployment"]["gate"]
    assert doc["evaluation"]["examples"][0]["answer"] == NONSENSE
    view = upload_view(entry, doc, name="chats.jsonl", dataset="chats", sha256=SHA)
    assert "below EVAL_MIN_TOKEN_F1" in view.error and "--skip-gate" in view.error
    assert Stage.LIVE not in [m.stage for m in view.milestones]  # it never went live

    _janitor_run(workspace)
    assert row().status is Status.RETIRED
    ctx = endpoint_actions.ActionContext(
        shared.entry.app_wiring.settings(),
        shared.entry.app_wiring.ledger(),
        shared.entry.app_wiring.workspace(),
        shared.entry.app_wiring.prepared_store(),
    )
    outcome = endpoint_actions.redeploy(ctx, SHA[:12], skip_gate=True)
    assert "gates are skipped" in outcome.message
    with scoring(workspace) as good:
        good.answer = NONSENSE
        run_until(lambda: row().status is Status.LIVE)
    entry = row()
    assert entry.deploy["evaluation"]["token_f1"] == 0.0 and entry.deploy["skip_gate"]  # measured, not gated
    assert "deployed anyway" in report(blob_service, storage_env)["evaluation"]["gate"]
    assert len(workspace.jobs.created) == 1  # not retrained


def test_a_good_endpoint_passes_the_gate(gated, blob_service, storage_env) -> None:
    workspace, job, tags = gated
    prefix = f"chats/{SHA[:16]}"
    test_split = blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"{prefix}/test.jsonl")
    reference = json.loads(test_split.download_blob().readall().splitlines()[0])["messages"][-1]["content"]
    with scoring(workspace) as server:
        server.answer = reference  # answers exactly what the held-out conversation says
        send(completed(job, tags))
        run_until(lambda: row().status is Status.LIVE)
    assert row().deploy["evaluation"]["token_f1"] == 1.0
    assert report(blob_service, storage_env)["evaluation"]["gate"] == "passed (EVAL_MIN_TOKEN_F1 0.3)"


def test_deploy_max_eval_loss_holds_the_model_before_anything_is_created(
    aml, blob_service, storage_env, monkeypatch
) -> None:
    """The final eval_loss is the one the report's Training section read (tests/mlflow_rest.py serves the job's
    curves as MLflow's tracking store does): 1.8 - 0.2 x 3 = 1.2 here."""
    monkeypatch.setenv("DEPLOY_MAX_EVAL_LOSS", "1.0")
    _reload()
    workspace, _ = aml
    job, tags = submit(blob_service, storage_env, workspace)
    finetune_tree(workspace.mlflow, job, {"loss": [(10, 1.5), (20, 1.3)], "eval_loss": [(50, 1.6), (150, 1.2)]})
    send(completed(job, tags))
    tick()
    tick()
    entry = row()
    assert entry.status is Status.HELD and entry.deploy["gated"]["phase"] == "training"
    assert entry.deploy["gated"]["reason"] == "the job's final eval_loss 1.2 is above DEPLOY_MAX_EVAL_LOSS 1"
    assert not [c for c in workspace.online_endpoints.calls if c[0] == "create"]  # nothing billable
    assert len(workspace.models.created) == 1
    view = upload_view(entry, report(blob_service, storage_env), name="chats.jsonl", dataset="chats", sha256=SHA)
    assert view.stage is Stage.HELD and view.final and "DEPLOY_MAX_EVAL_LOSS" in view.detail
    assert "--skip-gate" in view.detail
    [failed] = [e for e in le.earned(entry) if e.type == le.DEPLOY_FAILED]
    assert failed.data["phase"] == "training" and "nothing was created" in failed.data["cleanup"]

    ctx = endpoint_actions.ActionContext(
        shared.entry.app_wiring.settings(),
        shared.entry.app_wiring.ledger(),
        shared.entry.app_wiring.workspace(),
        shared.entry.app_wiring.prepared_store(),
    )
    assert "applies again" in endpoint_actions.redeploy(ctx, SHA[:12]).message
    tick()
    assert row().status is Status.HELD  # the same gate, the same answer
    assert "gates are skipped" in endpoint_actions.redeploy(ctx, SHA[:12], skip_gate=True).message
    with scoring(workspace):
        run_until(lambda: row().status is Status.LIVE)


def test_deploy_max_eval_loss_lets_a_model_below_it_deploy(aml, blob_service, storage_env, monkeypatch) -> None:
    monkeypatch.setenv("DEPLOY_MAX_EVAL_LOSS", "1.5")
    _reload()
    workspace, _ = aml
    job, tags = submit(blob_service, storage_env, workspace)
    finetune_tree(workspace.mlflow, job, {"eval_loss": [(50, 1.6), (150, 1.2)]})
    send(completed(job, tags))
    with scoring(workspace):
        run_until(lambda: row().status is Status.LIVE)


# --- chatft status ---


def test_chatft_status_shows_token_f1_and_p95_and_why_a_model_is_held(storage_env, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from shared.entry.cli.app import app
    from tests.test_upload_command import settings_for

    target = settings_for(storage_env, tmp_path, monkeypatch)
    ledger, now = shared.entry.app_wiring.ledger(), datetime.now(timezone.utc)
    figures = {"samples": 50, "token_f1": 0.6234, "rouge_l": 0.5, "empty_or_failed": 1, "latency_p95_ms": 840}
    for sha, status, extra in (
        ("a" * 64, Status.LIVE, {"evaluation": figures, "live_at": now.isoformat(), "step": "live"}),
        ("b" * 64, Status.HELD, {"gated": {"phase": "training", "reason": "the job's final eval_loss 1.2 is above X"}}),
    ):
        key = UploadKey("chats", sha)
        ledger.claim(key, upload_etag="", source=f"up/{sha[0]}.jsonl", cid=sha[:12], now=now, stale_after=now - now)
        entry = ledger.get(key)
        entry.status, entry.job_name = status, f"job-{sha[0]}"
        entry.deploy = {"model_name": "Phi-4-chatft", "model_version": "3", "endpoint": f"cft-{sha[0]}", **extra}
        assert ledger.save(entry)
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, ["status", *args, "--settings", str(target)], env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        return result.stdout

    table = run()
    assert "F1 / p95" in table and "0.62 / 840 ms" in table
    one = run("a.jsonl")
    assert "token F1 0.62, p95 840 ms on 50 held-out conversations" in one
    doc = json.loads(run("a.jsonl", "--json"))
    assert doc["token_f1"] == 0.6234 and doc["latency_p95_ms"] == 840
    held = json.loads(run("b.jsonl", "--json"))
    assert held["stage"] == "held" and "eval_loss 1.2 is above X" in held["detail"] and "--skip-gate" in held["error"]
    assert "history   validated → submitted → training → registered → held" in run("b.jsonl")
