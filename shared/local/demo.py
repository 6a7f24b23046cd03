"""`make run`: the whole loop on one machine, shown stage by stage.

drop JSONL -> validated -> fine-tune job -> job-finished event -> model registered ->
endpoint live and answering -> idle endpoint removed. Everything is stopped at the end.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

import shared.runtime
from shared.deploy.smoke import prompt_messages, score
from shared.ledger import LedgerEntry, Status, UploadKey
from shared.local.session import DevSession
from shared.naming import dataset_name, dataset_prefix

DEMO_SETTINGS = {
    "ML_BACKEND": "local",
    "DEPLOY_RECONCILE_SCHEDULE": "*/1 * * * * *",
    "JANITOR_SCHEDULE": "*/2 * * * * *",
    "JANITOR_IDLE_MINUTES": "0.25",
    "SUBMIT_CLAIM_TIMEOUT_SECONDS": "60",
}
STAGE_TIMEOUT = 90.0


class DemoError(RuntimeError):
    pass


def wait_for(what: str, check: Callable[[], Any], console: Console, timeout: float = STAGE_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    with console.status(f"[cyan]{what}…[/]"):
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
    raise DemoError(f"timed out after {timeout:.0f}s waiting: {what}")


def run_demo(
    sample: Path, *, console: Console, keep: bool = False, state_dir: Path = Path(".chatft/demo"), port: int = 0
) -> int:
    shutil.rmtree(state_dir, ignore_errors=True)
    overrides = {**DEMO_SETTINGS, "LOCAL_STATE_DIR": str(state_dir)}
    if keep:
        overrides["JANITOR_DRY_RUN"] = "true"
    started = time.monotonic()

    def done(stage: str, detail: str) -> None:
        console.print(f"[green]✓[/] [bold]{stage:<22}[/] {detail} [dim]({time.monotonic() - started:.1f}s)[/]")

    def host_line(line: str) -> None:
        if not (line.startswith("timer") and line.endswith(")") and " ok (" in line):  # ticks are noise
            console.print(f"[dim]    host │ {line}[/]")

    with DevSession(
        overrides=overrides, port=port, poll_seconds=0.5, say=host_line, log_file=state_dir / "host.log"
    ) as session:
        settings = shared.runtime.settings()
        data = sample.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        blob_name = f"demo/{sample.name}"
        key = UploadKey(dataset_name(blob_name), sha)
        prefix = dataset_prefix(key.dataset, sha)
        store = shared.runtime.prepared_store()
        from shared.storage import blob_service, ensure_container

        uploads = blob_service().get_container_client(settings.upload_container)
        ensure_container(uploads)
        uploads.upload_blob(blob_name, data, overwrite=True)
        console.print(
            f"[bold]chatft[/] local loop: uploaded [cyan]{blob_name}[/] ({len(data):,} bytes) to Azurite container {settings.upload_container}"
        )

        report = wait_for("validating the upload", lambda: _report(store, prefix), console)
        splits = report["splits"]
        done(
            "validated",
            f"{report['conversations']} conversations (train {splits['train']}, validation {splits['validation']}, test {splits['test']}), {sum(report['error_totals'].values())} errors, {sum(report['warning_totals'].values())} warnings",
        )

        ledger, workspace = shared.runtime.ledger(), session.workspace
        entry: LedgerEntry = wait_for(
            "submitting the fine-tuning job",
            lambda: _entry(ledger, key, Status.CLAIMED, Status.RETRYABLE, exclude=True),
            console,
        )
        done("job submitted", f"{entry.job_name} (experiment {settings.experiment_name})")
        job = wait_for("training", lambda: _finished_job(workspace, entry.job_name), console)
        if job["status"] != "Completed":
            raise DemoError(f"the job {job['status']}: {job.get('error')}")
        m = job["metrics"]
        done(
            "trained",
            f"{m['train_conversations']} conversations in {m['train_seconds']}s; test token F1 {m['token_f1']:.2f} vs {m['baseline_token_f1']:.2f} for the most-common-reply baseline",
        )
        entry = wait_for(
            "waiting for the job-finished event",
            lambda: _entry(ledger, key, Status.REGISTERED, Status.DEPLOYING, Status.LIVE),
            console,
        )
        done("event received", "RunCompleted for the parent pipeline run, from the local workspace")
        done("model registered", f"{entry.deploy['model_name']}:{entry.deploy['model_version']}")
        entry = wait_for(
            "deploying the endpoint", lambda: _entry(ledger, key, Status.LIVE, Status.DEPLOY_FAILED), console
        )
        if entry.status is not Status.LIVE:
            raise DemoError(f"deployment failed: {entry.error}")
        smoke = entry.deploy["smoke"]
        done(
            "endpoint live",
            f"{entry.deploy['endpoint']} at {entry.deploy['scoring_uri']} (smoke test {smoke['latency_ms']} ms)",
        )

        conversation = json.loads(store.read_first_line(f"{prefix}/test.jsonl"))
        messages = prompt_messages(conversation)
        endpoint = entry.deploy["endpoint"]
        answer = score(
            entry.deploy["scoring_uri"], workspace.endpoint_key(endpoint), entry.deploy["deployment"], messages, 30
        ).answer
        console.print(f"    [bold]user[/]      {messages[-1]['content']}")
        console.print(f"    [bold]model[/]     {answer}")
        console.print(f"    [dim]reference {conversation['messages'][len(messages)]['content']}[/]")
        if keep:
            console.print(
                f'\nThe endpoint stays up (janitor in dry run). Score your own prompts in another terminal:\n  [cyan].venv/bin/chatft score "What is the capital of Peru?" --state {state_dir}[/]\nPress Ctrl-C to stop everything.'
            )
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                console.print()
        else:
            entry = wait_for(
                f"waiting for the janitor (idle window {float(settings.janitor_idle_minutes) * 60:.0f}s)",
                lambda: _entry(ledger, key, Status.RETIRED),
                console,
            )
            done("idle endpoint removed", entry.deploy["retired"]["reason"])
    console.print(
        f"[bold]Done[/] in {time.monotonic() - started:.0f}s. Host, scoring servers and Azurite are stopped; state and logs in {state_dir}."
    )
    return 0


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
    return job if job and job.get("status") in ("Completed", "Failed") else None
