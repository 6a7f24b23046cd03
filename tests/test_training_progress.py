"""While a job trains, `chatft status UPLOAD` shows its newest step (or epoch) and training loss, and its studio
link: on Azure from the MLflow tracking store as the fine-tuning step logs it while it runs (MLflow REST
`metrics/get-history`, https://mlflow.org/docs/latest/rest-api.html#get-history, read by
shared/azure/azureml/tracking.py over tests/mlflow_rest.py), offline from the local job's metrics.json."""

from __future__ import annotations

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
