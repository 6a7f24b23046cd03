"""While a job trains, `chatft status UPLOAD` shows its newest step (or epoch) and training loss, and its studio
link: on Azure from the MLflow tracking store as the fine-tuning step logs it while it runs (MLflow REST
`metrics/get-history`, https://mlflow.org/docs/latest/rest-api.html#get-history, read by
shared/azure/azureml/tracking.py over tests/mlflow_rest.py), offline from the local job's metrics.json."""

from __future__ import annotations

import json

from shared.domain.ledger import Status
from shared.domain.training_progress import progress_line
from tests.deploy_flow import SHA, row, submit
from tests.mlflow_rest import finetune_tree
from tests.test_endpoint_action_commands import chatft, ctx  # noqa: F401  (ctx is a fixture)


def test_status_of_a_training_upload_shows_its_newest_step_and_training_loss(
    ctx,  # noqa: F811
    blob_service,
    storage_env,
) -> None:
    service, _, _, path = ctx
    job, _ = submit(blob_service, storage_env, service)
    assert row().status is Status.SUBMITTED
    before = chatft(path, "status", SHA[:10])
    assert before.exit_code == 0, before.output
    assert "progress" not in before.stdout, "nothing logged yet: no progress line, and no failure"
    finetune_tree(service.mlflow, job, {"loss": [(10, 2.0), (20, 1.5)], "eval_loss": [(20, 1.6)]})

    result = chatft(path, "status", SHA[:10])

    assert result.exit_code == 0, result.output
    lines = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in result.stdout.splitlines() if line.strip()}
    assert lines["stage"] == "training" and lines["progress"] == "step 20, training loss 1.500"
    assert lines["studio"].startswith(f"https://ml.azure.com/runs/{job}")
    as_json = chatft(path, "status", SHA[:10], "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["progress"] == "step 20, training loss 1.500"


def test_the_local_jobs_metrics_read_as_its_newest_epoch_and_training_loss(tmp_path) -> None:
    """The local stand-in logs one point per epoch to metrics.json (shared/local/train_job.py `_log_epochs`)."""
    from shared.local.backend import LocalWorkspace
    from shared.local.state import write_json
    from shared.settings import Settings

    workspace = LocalWorkspace(Settings.from_env({"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(tmp_path)}))
    try:
        folder = tmp_path / "jobs" / "chatft-chats-a1"
        write_json(folder / "job.json", {"status": "Completed", "started_at": 1.0, "ended_at": 2.0})
        metrics = [
            {"key": "train_loss", "value": 0.6, "timestamp": 1, "step": 1},
            {"key": "eval_loss", "value": 0.7, "timestamp": 1, "step": 1},
            {"key": "train_loss", "value": 0.41, "timestamp": 2, "step": 2},
        ]
        write_json(folder / "metrics.json", {"step": "epoch", "metrics": metrics})
        assert progress_line(workspace.training_metrics("chatft-chats-a1")) == "epoch 2, training loss 0.410"
    finally:
        workspace.shutdown()


def looks(mlflow, count: int, timeout: float = 10.0) -> None:
    """Wait until the command has read the tracking store `count` more times (each read starts with runs/get)."""
    import time

    def reads() -> int:
        return sum(call.name == "runs/get" for call in list(mlflow.calls))

    wanted, deadline = reads() + count, time.monotonic() + timeout
    while reads() < wanted and time.monotonic() < deadline:
        time.sleep(0.02)


def progress_lines(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines() if "training loss" in line]


def test_upload_follow_offline_prints_each_new_epoch_and_loss_once(storage_env, tmp_path, monkeypatch) -> None:
    """Offline the tracking store is the local job's metrics.json (one point per epoch, as shared/local/
    train_job.py `_log_epochs` writes it; read by LocalWorkspace.training_metrics). A look that finds nothing new
    (the same epoch again, or only an evaluation loss) prints nothing; the studio link is said once."""
    import json
    import time
    import uuid

    import shared.entry.app_wiring
    from shared.local.state import write_json
    from tests.test_upload_command import follow, stage_lines

    state = tmp_path / "state"
    values = {**storage_env, "LEDGER_TABLE": f"up{uuid.uuid4().hex[:12]}", "ML_BACKEND": "local"}
    values["LOCAL_STATE_DIR"] = str(state)
    monkeypatch.setenv("LEDGER_TABLE", values["LEDGER_TABLE"])
    shared.entry.app_wiring.reset()
    target = tmp_path / "local.settings.json"
    target.write_text(json.dumps({"Values": values}))

    def training(job: str) -> None:
        folder = state / "jobs" / job
        write_json(folder / "job.json", {"status": "Running", "started_at": time.time()})
        logged: list[dict] = []
        for key, value, epoch in [(None, 0, 0), ("train_loss", 0.6, 1), ("eval_loss", 0.7, 1), ("train_loss", 0.41, 2)]:
            if key is not None:
                logged.append({"key": key, "value": value, "timestamp": time.time(), "step": epoch})
                write_json(folder / "metrics.json", {"step": "epoch", "metrics": logged})
            time.sleep(0.4)  # several looks at every state

    result = follow(target, tmp_path, storage_env, training=training)

    assert result.exit_code == 0, result.output
    assert progress_lines(result.stdout) == ["epoch 1, training loss 0.600", "epoch 2, training loss 0.410"]
    lines = result.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "training loss" in line)
    assert stage_lines("\n".join(lines[:first]))[-1] == "training"
    assert stage_lines("\n".join(lines[first:]))[0] == "registered"
    assert result.stdout.count("https://ml.azure.com/runs/chatft-chats-job-a1") == 1
    assert "no training progress" not in result.stderr


def test_a_tracking_store_that_refuses_is_one_dim_line_and_follow_goes_on(
    ctx,  # noqa: F811
    blob_service,
    storage_env,
    tmp_path,
) -> None:
    """The MLflow server's 403 (an MlflowException's JSON, as tests/mlflow_rest.py answers errors) on every look
    is said once, in one line, and `--follow` still follows the upload until it is live."""
    from tests.test_upload_command import follow, stage_lines

    service, _, _, path = ctx
    denied = '{"error_code": "PERMISSION_DENIED", "message": "no read access to runs"}'
    service.mlflow.fail["runs/get"] = (403, denied)

    result = follow(path, tmp_path, storage_env, training=lambda job: looks(service.mlflow, 3))

    assert result.exit_code == 0, result.output
    assert stage_lines(result.stdout)[-1] == "live" and progress_lines(result.stdout) == []
    said = [line for line in result.stderr.splitlines() if "no training progress" in line]
    assert len(said) == 1 and "HTTP 403" in said[0] and "PERMISSION_DENIED" in said[0], result.stderr
    assert "you need read access to the workspace's runs" in said[0]
    assert "Traceback" not in result.output


def test_the_report_says_what_trained_a_local_job_and_on_which_device(tmp_path) -> None:
    """Issue 22: "GPU when torch sees one, CPU otherwise; the report says which": the device the job itself
    recorded (shared/local/lora/train.py metrics), shown as a note in the report's Training section."""
    from shared.domain.training import render_training, training_section
    from shared.local.backend import LocalWorkspace
    from shared.local.state import write_json
    from shared.settings import Settings

    records = {
        "lora-a1": {"trainer": "lora", "local_base_model": "tiny", "metrics": {"device": "cuda bfloat16"}},
        "lora-a2": {
            "trainer": "lora",
            "local_base_model": "/models/phi",
            "metrics": {"device": "cpu", "train_tokens": 391680, "tokens_per_second": 9799},
        },
        "stand-in-a1": {"metrics": {"token_f1": 0.9}},
        "running-a1": {"trainer": "lora"},
    }
    workspace = LocalWorkspace(Settings.from_env({"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(tmp_path)}))
    try:
        for name, record in records.items():
            folder = tmp_path / "jobs" / name
            write_json(folder / "job.json", {"status": "Completed", "started_at": 1.0, "ended_at": 2.0, **record})
            logged = [{"key": "train_loss", "value": 0.5, "timestamp": 1, "step": 1}]
            write_json(folder / "metrics.json", {"step": "epoch", "metrics": logged})
        read = {name: workspace.training_metrics(name) for name in records}
    finally:
        workspace.shutdown()
    notes = {name: metrics.notes for name, metrics in read.items()}
    assert notes["lora-a1"] == ["trained by LoRA on tiny, on cuda bfloat16"]
    assert notes["lora-a2"] == ["trained by LoRA on /models/phi, on cpu: 391,680 tokens at 9,799 tokens/s"]
    assert notes["stand-in-a1"] == ["trained by the retrieval stand-in on the CPU (no foundation model is fine-tuned)"]
    assert notes["running-a1"] == []
    section = training_section(
        read["lora-a1"],
        job="lora-a1",
        status="completed",
        compute="local",
        instance_type="local",
        nodes=1,
        gpus_per_node=0,
        price_per_gpu_hour="",
    )
    assert "- Note: trained by LoRA on tiny, on cuda bfloat16" in render_training(section)
