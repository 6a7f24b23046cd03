"""`make run`: the whole loop on one machine, shown stage by stage.

drop JSONL -> validated -> fine-tune job -> job-finished event -> model registered ->
endpoint live, measured on the held-out split, and answering -> idle endpoint removed. Everything is stopped at
the end.

Every run is isolated: its own Azurite (free ports, in memory) and its own state folder
(`.chatft/runs/<id>`), so two runs at once, or a run next to `chatft dev`, share nothing.
Each stage wait stops at the first sign of failure with a one-line reason (DemoError).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

import shared.entry.app_wiring
from shared.azure.scoring import score
from shared.domain.deploy.chat_turns import smoke_prompt
from shared.domain.evaluation import summary_line
from shared.domain.ledger import LedgerEntry, Status, UploadKey
from shared.domain.lifecycle_events import RETIRED
from shared.domain.naming import dataset_name, dataset_prefix
from shared.domain.training import CHART_FILE
from shared.entry.offline.dev_session import DevSession
from shared.local.host import POISON_AFTER, load_local_settings
from shared.local.procs import check_interrupt
from shared.local.state import read_json, write_json
from shared.local.trainers import LORA, lora_problem, trainer_of

EVENTS_FILE = "events.jsonl"
"""The lifecycle events of the run, saved beside the report."""

DEMO_SETTINGS = {
    "ML_BACKEND": "local",
    "DEPLOY_RECONCILE_SCHEDULE": "*/1 * * * * *",
    "JANITOR_SCHEDULE": "*/2 * * * * *",
    "JANITOR_IDLE_MINUTES": "0.25",
    "SUBMIT_CLAIM_TIMEOUT_SECONDS": "60",
    # the whole test split is evaluated (not the first 50), so the endpoint's token F1 is the job's test token F1
    "EVAL_SAMPLES": "1000",
}
LORA_TINY_OVERRIDES = {"num_train_epochs": 5, "learning_rate": 3e-3, "per_device_train_batch_size": 8}
"""FINETUNE_OVERRIDES for a LoRA demo on `tiny` when none are set: chatft's defaults (learning rate 5e-6, batch 1)
suit a pretrained model; a decoder that starts from random weights learns the sample's surface only with a larger
rate and batch (seconds on 2 cores)."""
STAGE_TIMEOUT = 90.0
RUNS = Path(".chatft/runs")
KEEP_RUNS = 5
"""Finished runs' folders kept (the newest); a live run's folder is never removed."""
FAILED = {Status.FAILED, Status.CANCELED, Status.DEPLOY_FAILED}


class DemoError(RuntimeError):
    """The run cannot go on: one line saying why."""


def new_run_dir(runs: Path = RUNS) -> Path:
    """A fresh folder for this run's state; prunes old finished runs (never one whose process is alive)."""
    runs.mkdir(parents=True, exist_ok=True)
    name = f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    folder, n = runs / name, 1
    while True:
        try:
            folder.mkdir()
            break
        except FileExistsError:
            n += 1
            folder = runs / f"{name}-{n}"
    write_json(folder / "run.json", {"pid": os.getpid(), "started": time.time()})
    finished = [p for p in sorted(runs.iterdir(), reverse=True) if p != folder and not _live_run(p)]
    for old in finished[KEEP_RUNS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def _live_run(folder: Path) -> bool:
    try:
        pid = int((read_json(folder / "run.json") or {}).get("pid") or 0)
    except (ValueError, TypeError):
        return False
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def wait_for(
    what: str,
    check: Callable[[], Any],
    console: Console,
    *,
    failed: Callable[[], str | None] = lambda: None,
    timeout: float = STAGE_TIMEOUT,
) -> Any:
    """Poll `check` until it returns something; `failed` returning a reason ends the wait at once."""
    deadline = time.monotonic() + timeout
    with console.status(f"[cyan]{what}…[/]"):
        while time.monotonic() < deadline:
            check_interrupt()
            reason = failed()
            if reason:
                raise DemoError(f"{what}: {reason}")
            value = check()
            if value:
                return value
            time.sleep(0.2)
    raise DemoError(f"timed out after {timeout:.0f}s {what}")


def run_demo(
    sample: Path,
    *,
    console: Console,
    keep: bool = False,
    state_dir: Path | None = None,
    port: int = 0,
    trainer: str | None = None,
) -> int:
    """`trainer` sets LOCAL_TRAINER for this run only (None: the setting's own value, the retrieval stand-in by
    default)."""
    if not sample.is_file():
        raise DemoError(f"no such sample file: {sample}")
    overrides = {**DEMO_SETTINGS, **({"LOCAL_TRAINER": trainer} if trainer else {})}
    chosen = load_local_settings(overrides=overrides)
    if chosen.get("LOCAL_TRAINER") == LORA:
        base = chosen.get("LOCAL_BASE_MODEL", "tiny").strip()
        if problem := lora_problem(base):  # before anything starts: one line, as preflight would say it
            raise DemoError(str(problem))
        if base == "tiny" and chosen.get("FINETUNE_OVERRIDES", "").strip() in ("", "{}"):
            overrides["FINETUNE_OVERRIDES"] = json.dumps(LORA_TINY_OVERRIDES)
    state_dir = state_dir or new_run_dir()
    log_file = state_dir / "host.log"
    overrides["LOCAL_STATE_DIR"] = str(state_dir)
    if keep:
        overrides["JANITOR_DRY_RUN"] = "true"
    started = time.monotonic()

    def done(stage: str, detail: str) -> None:
        console.print(f"[green]✓[/] [bold]{stage:<22}[/] {detail} [dim]({time.monotonic() - started:.1f}s)[/]")

    def host_line(line: str) -> None:
        if line.startswith("topic "):  # a lifecycle event, as a subscriber of EVENTS_TOPIC_ENDPOINT gets it
            console.print(f"    [magenta]event[/] │ {escape(line.removeprefix('topic').strip())}")
            return
        if not (line.startswith("timer") and line.endswith(")") and " ok (" in line):  # ticks are noise
            console.print(f"[dim]    host │ {escape(line)}[/]")

    with DevSession(
        overrides=overrides, port=port, poll_seconds=0.5, say=host_line, log_file=log_file, reuse_azurite=False
    ) as session:
        try:
            _stages(session, sample, console, keep, state_dir, done)
        except (DemoError, KeyboardInterrupt):
            raise
        except Exception as exc:  # one line here, the traceback in the log
            logging.getLogger("chatft.demo").exception("the demo failed")
            raise DemoError(f"{type(exc).__name__}: {exc} (traceback in {log_file})") from exc
    console.print(
        f"[bold]Done[/] in {time.monotonic() - started:.0f}s. Host, scoring servers and Azurite are stopped; state and logs in {state_dir}."
    )
    return 0


def _stages(
    session: DevSession, sample: Path, console: Console, keep: bool, state_dir: Path, done: Callable[[str, str], None]
) -> None:
    settings = shared.entry.app_wiring.settings()
    data = sample.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    blob_name = f"demo/{sample.name}"
    key = UploadKey(dataset_name(blob_name), sha)
    prefix = dataset_prefix(key.dataset, sha)
    store = shared.entry.app_wiring.prepared_store()
    ledger, workspace = shared.entry.app_wiring.ledger(), session.workspace
    from shared.azure.storage import blob_service, ensure_container

    uploads = blob_service().get_container_client(settings.upload_container)
    ensure_container(uploads)
    uploads.upload_blob(blob_name, data, overwrite=True)
    console.print(
        f"[bold]chatft[/] local loop: uploaded [cyan]{blob_name}[/] ({len(data):,} bytes) to Azurite container {settings.upload_container}"
    )
    ingest = f"ingest_upload {settings.upload_container}/{blob_name}"

    def broken() -> str | None:
        """What every stage watches: the session itself, and the upload's ledger row."""
        problem = session.problem()
        if problem:
            return problem
        entry = ledger.get(key)
        if entry is not None and entry.status in FAILED:
            return f"the upload is {entry.status.value}: {entry.error or entry.deploy.get('error') or 'no detail'}"
        return None

    def ingest_failed() -> str | None:
        host = session.host
        if host is not None and ingest in host.poisoned:
            return f"ingest_upload failed {POISON_AFTER} times, the host gave up: {host.failures.get(ingest)}"
        return broken()

    report = wait_for("validating the upload", lambda: _report(store, prefix), console, failed=ingest_failed)
    if not report.get("valid", True):
        codes = ", ".join(f"{code} {n}" for code, n in sorted(report.get("error_totals", {}).items()))
        raise DemoError(
            f"the upload was rejected ({codes or 'see the report'}); report in {store.location(f'{prefix}/report.md')}"
        )
    splits = report["splits"]
    done(
        "validated",
        f"{report['conversations']} conversations (train {splits['train']}, validation {splits['validation']}, test {splits['test']}), {sum(report['error_totals'].values())} errors, {sum(report['warning_totals'].values())} warnings",
    )

    entry: LedgerEntry = wait_for(
        "submitting the fine-tuning job",
        lambda: _entry(ledger, key, Status.CLAIMED, Status.RETRYABLE, exclude=True),
        console,
        failed=ingest_failed,
    )
    if entry.status in FAILED:
        raise DemoError(f"the submission {entry.status.value}: {entry.error}")
    done("job submitted", f"{entry.job_name} (experiment {settings.experiment_name})")
    lora = settings.local_trainer == LORA
    console.print(
        f"[dim]    offline, the fine-tuning job trains LoRA adapters on {escape(settings.local_base_model)} "
        f"(LOCAL_BASE_MODEL), not the foundation model; FINETUNE_OVERRIDES {escape(json.dumps(settings.finetune_overrides))}[/]"
        if lora
        else "[dim]    offline, the fine-tuning job is a retrieval stand-in: it answers with the most similar training"
        ' reply (no foundation model is fine-tuned; make run ARGS="--trainer lora" fine-tunes a real one)[/]'
    )
    job = wait_for("training", lambda: _finished_job(workspace, entry.job_name), console, failed=broken)
    if job["status"] != "Completed":
        raise DemoError(f"the job {job['status']}: {job.get('error')} (log in {state_dir}/jobs/{entry.job_name})")
    m = job["metrics"]
    scores = f"test token F1 {m['token_f1']:.2f} vs {m['baseline_token_f1']:.2f} for the most-common-reply baseline"
    if trainer_of(job) == LORA:  # what the job record says trained it
        done("trained (LoRA)", f"{_lora_line(job, m)}; {scores}")
    else:
        done(
            "trained (stand-in)",
            f"retrieval over {m['train_conversations']} conversations in {m['train_seconds']}s; {scores}",
        )

    def undelivered() -> str | None:
        record = workspace.job_record(entry.job_name) or {}
        lost = [e for e in record.get("events_undelivered", []) if e["event"]["eventType"].endswith("RunCompleted")]
        return f"the job's RunCompleted event was not delivered: {lost[-1]['error']}" if lost else broken()

    entry = wait_for(
        "waiting for the job-finished event",
        lambda: _entry(ledger, key, Status.REGISTERED, Status.DEPLOYING, Status.LIVE),
        console,
        failed=undelivered,
    )
    done("event received", "RunCompleted for the parent pipeline run, from the local workspace")
    done("model registered", f"{entry.deploy['model_name']}:{entry.deploy['model_version']}")
    entry = wait_for("deploying the endpoint", lambda: _entry(ledger, key, Status.LIVE), console, failed=broken)
    smoke = entry.deploy["smoke"]
    figures = entry.deploy.get("evaluation") or {}
    if figures.get("token_f1") is not None:  # measured before the endpoint went live: said first
        done(
            "evaluated",
            f"{summary_line(figures)} on {figures['samples']} held-out {figures.get('split', 'test')} conversations "
            f"(the job measured test token F1 {m['token_f1']:.3f} on {m['examples']})",
        )
    done(
        "endpoint live",
        f"{entry.deploy['endpoint']} at {entry.deploy['scoring_uri']} (smoke test {smoke['latency_ms']} ms)",
    )

    conversation = json.loads(store.read_first_line(f"{prefix}/test.jsonl"))
    messages = smoke_prompt(conversation) or [{"role": "user", "content": "Hello!"}]
    endpoint = entry.deploy["endpoint"]
    answer = score(
        entry.deploy["scoring_uri"],
        workspace.endpoint_key(endpoint),
        entry.deploy["deployment"],
        messages,
        30,
        shape=entry.deploy.get("input_shape"),  # what the smoke test found this deployment reads
    ).answer
    console.print(f"    [bold]user[/]      {escape(messages[-1]['content'])}")  # data, not markup
    console.print(f"    [bold]model[/]     {escape(answer)}")
    following = conversation["messages"][len(messages) : len(messages) + 1]
    if following and following[0].get("role") == "assistant":
        console.print(f"    [dim]reference {escape(str(following[0].get('content')))}[/]")
    if keep:
        done("report saved", _save_report(store, prefix, state_dir, session))
        console.print(
            f'\nThe endpoint stays up (janitor in dry run). Score your own prompts in another terminal:\n  [cyan].venv/bin/chatft score "What is the capital of Peru?" --state {state_dir}[/]\nPress Ctrl-C to stop everything.'
        )
        with contextlib.suppress(KeyboardInterrupt):
            while not session.problem():
                check_interrupt()
                time.sleep(0.2)
            raise DemoError(f"stopped: {session.problem()}")
        console.print()
        return

    def retired_or_broken() -> str | None:
        current = ledger.get(key)
        if current is not None and current.status not in (Status.LIVE, Status.RETIRING, Status.RETIRED):
            return f"the endpoint's row went to {current.status.value}"
        return broken()

    entry = wait_for(
        f"waiting for the janitor (idle window {float(settings.janitor_idle_minutes) * 60:.0f}s)",
        lambda: _entry(ledger, key, Status.RETIRED),
        console,
        failed=retired_or_broken,
    )
    done("idle endpoint removed", entry.deploy["retired"]["reason"])

    # the janitor records RETIRED in the ledger first, then writes the report, then publishes the event
    def reported_and_announced() -> bool:
        reported = ((_report(store, prefix) or {}).get("deployment") or {}).get("endpoint_hours")
        published = session.host.published if session.host is not None else []
        return bool(reported) and any(e.get("type") == RETIRED for e in published)

    wait_for("the report and event of the retirement", reported_and_announced, console, failed=broken, timeout=30)
    done("report saved", _save_report(store, prefix, state_dir, session))


def _save_report(store: Any, prefix: str, state_dir: Path, session: Any) -> str:
    """Copy the upload's report and training chart out of this run's Azurite (which stops with the run), and
    the lifecycle events the local topic received, one CloudEvent (as a subscriber gets it) per line."""
    folder = state_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for name in ("report.md", "report.json", CHART_FILE):
        raw = store.read_bytes(f"{prefix}/{name}")
        if raw is not None:
            (folder / name).write_bytes(raw)
            saved.append(name)
    chart = f"; training chart {folder / CHART_FILE}" if CHART_FILE in saved else "; no training chart"
    published = list(session.host.published) if session.host is not None else []
    if published:
        lines = (json.dumps(event, sort_keys=True) + "\n" for event in published)
        (folder / EVENTS_FILE).write_text("".join(lines), encoding="utf-8")
        chart += f"; {len(published)} events {folder / EVENTS_FILE}"
    return f"{folder / 'report.md'}{chart}"


def _lora_line(job: dict[str, Any], m: dict[str, Any]) -> str:
    """Which trainer trained the model, on which device, and how fast (the LoRA job's own metrics)."""
    base = job.get("local_base_model", "the base model")
    device = str(m.get("device", "?"))  # "cpu", or torch's GPU device and dtype ("cuda bfloat16")
    where = "CPU" if device == "cpu" else f"GPU ({device})"
    return (
        f"{base} on the {where}: {m['train_conversations']} conversations, "
        f"{m.get('train_tokens', 0):,} tokens in {m['train_seconds']}s ({m.get('tokens_per_second', 0):,.0f} tokens/s)"
    )


def _report(store: Any, prefix: str) -> dict[str, Any] | None:
    raw = store.read_bytes(f"{prefix}/report.json")
    return json.loads(raw) if raw else None


def _entry(ledger: Any, key: UploadKey, *statuses: Status, exclude: bool = False) -> LedgerEntry | None:
    entry = ledger.get(key)
    if entry is None:
        return None
    return entry if (entry.status in statuses) != exclude else None


def _finished_job(workspace: Any, name: str) -> dict[str, Any] | None:
    job = workspace.job_record(name)
    return job if job and job.get("status") in ("Completed", "Failed", "Canceled") else None
