"""The report's Training section and training.png when a job finishes, and the endpoint's hours when retired.

Azure ML: the real adapter over the aml fixture; the workspace's MLflow tracking store is tests/mlflow_rest.py
(MLflow's own entities, search and wire encoding behind Azure ML's tracking host).
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from shared.domain.training import (
    CHART_SIZE,
    TrainingMetrics,
    endpoint_uptime,
    estimated_cost,
    gpu_hours,
    table,
    training_section,
)
from tests.deploy_flow import SHA, completed, report, row, send, status, submit, tick
from tests.mlflow_rest import finetune_tree

PREFIX = f"chats/{SHA[:16]}"


def curves() -> dict[str, list[tuple[int, float]]]:
    return {
        "loss": [(s * 10, 2.0 - 0.1 * s) for s in range(1, 16)],
        "eval_loss": [(e * 50, 1.8 - 0.2 * e) for e in range(1, 4)],
        "learning_rate": [(10, 5e-6)],
    }


@pytest.fixture
def price(monkeypatch):
    monkeypatch.setenv("GPU_HOURLY_PRICE_USD", "3.5")


@pytest.fixture
def submitted(price, aml, blob_service, storage_env):
    workspace, _ = aml
    job, tags = submit(blob_service, storage_env, workspace)
    return job, tags


def chart(blob_service, storage_env) -> bytes:
    blob = blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"{PREFIX}/training.png")
    return blob.download_blob().readall()


def markdown(blob_service, storage_env) -> str:
    blob = blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"{PREFIX}/report.md")
    return blob.download_blob().readall().decode()


def test_completed_job_gets_curves_chart_and_cost(submitted, aml, blob_service, storage_env) -> None:
    from PIL import Image

    job, tags = submitted
    workspace, _ = aml
    finetune_tree(workspace.mlflow, job, curves())
    send(completed(job, tags))
    tick()  # the delivery only marks the row; the reconciler's tick reads the metrics
    training = report(blob_service, storage_env)["training"]
    assert training["status"] == "completed" and training["run"] == f"{job}_finetune"
    assert training["columns"] == ["step", "loss", "eval_loss"]  # learning_rate is bookkeeping
    assert training["duration_seconds"] == 7200.0
    gpus = training["gpus_per_node"]
    assert gpus >= 1 and training["gpu_hours"] == pytest.approx(2.0 * gpus)
    assert training["estimated_cost_usd"] == pytest.approx(7.0 * gpus)
    assert training["chart"] == "training.png"
    image = Image.open(io.BytesIO(chart(blob_service, storage_env)))
    image.load()
    assert image.format == "PNG" and image.size == CHART_SIZE
    md = markdown(blob_service, storage_env)
    assert "## Training" in md and "| step | loss | eval_loss |" in md and "![training curves](training.png)" in md
    assert "Estimated cost: $" in md


@pytest.mark.parametrize(
    ("status_code", "body", "expected"),
    [
        (
            403,
            '{"error": {"code": "AuthorizationFailed", "message": "no runs/read"}}',
            "AuthorizationFailed: no runs/read",
        ),
        (404, '{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run not found"}', "RESOURCE_DOES_NOT_EXIST"),
        (502, "<html>Bad Gateway</html>", "HTTP 502 (<html>Bad Gateway</html>)"),
    ],
)
def test_when_the_tracking_store_refuses_the_report_says_why_and_registration_succeeds(
    submitted, aml, blob_service, storage_env, status_code, body, expected
) -> None:
    job, tags = submitted
    workspace, _ = aml
    workspace.mlflow.fail["runs/get"] = (status_code, body)
    send(completed(job, tags))
    tick()  # the delivery only marks the row; the reconciler's tick reads the metrics
    doc = report(blob_service, storage_env)
    assert doc["job"]["status"] == "completed" and "Phi-4" in str(doc["deployment"])
    assert doc["training"]["metrics"].startswith("metrics unavailable: TrackingError: GET runs/get answered HTTP")
    assert expected in doc["training"]["metrics"]
    assert ("AzureML Data Scientist" in doc["training"]["metrics"]) == (status_code == 403)
    assert doc["training"]["gpu_hours"] is None and doc["training"]["estimated_cost_usd"] is None
    assert "Metrics unavailable" in markdown(blob_service, storage_env)


def test_failed_job_with_metrics_gets_a_training_section(submitted, aml, blob_service, storage_env) -> None:
    job, tags = submitted
    workspace, _ = aml
    finetune_tree(workspace.mlflow, job, curves())
    send(status(job, tags, "Failed"))
    tick()  # the delivery only marks the row; the reconciler's tick reads the metrics
    training = report(blob_service, storage_env)["training"]
    assert training["status"] == "failed" and training["rows"]


def test_cost_with_and_without_a_price() -> None:
    hours = gpu_hours(5400, nodes=1, gpus_per_node=2)
    assert hours == 3.0
    assert estimated_cost(hours, 3.673) == 11.02
    assert estimated_cost(hours, "") is None and estimated_cost(None, 3.0) is None
    metrics = TrainingMetrics({"loss": [(1, 1.0)]}, started_at=0, ended_at=3600)
    common = {"job": "j", "status": "completed", "compute": "serverless", "instance_type": "X", "nodes": 1}
    with_price = training_section(metrics, gpus_per_node=1, price_per_gpu_hour=2.5, **common)
    without = training_section(metrics, gpus_per_node=1, price_per_gpu_hour="", **common)
    assert with_price["estimated_cost_usd"] == 2.5 and without["estimated_cost_usd"] is None
    assert without["gpu_hours"] == 1.0


def test_table_is_thinned_keeping_first_and_last() -> None:
    metrics = TrainingMetrics({"loss": [(s, 1 / s) for s in range(1, 101)]})
    columns, rows = table(metrics, max_rows=5)
    assert columns == ["step", "loss"] and [r[0] for r in rows] == [1, 26, 51, 75, 100]


def test_endpoint_hours_and_cost_line() -> None:
    line = endpoint_uptime(
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T02:30:00+00:00",
        "Standard_NC24ads_A100_v4",
        3.673,
    )
    assert line.startswith("2.50 h up, about $9.18")
    assert "no list price known" in endpoint_uptime("2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", "X", None)


def test_local_job_logs_real_epoch_curves(tmp_path, monkeypatch) -> None:
    from shared.local import train_job
    from shared.local.backend import LocalWorkspace
    from tests.chats import conversation

    rows = [conversation(i, turns=2) for i in range(40)]
    job = train_job.Job(tmp_path / "jobs" / "j1")
    job.folder.mkdir(parents=True)
    train_job._log_epochs(job, rows, rows[:10])
    settings = SimpleNamespace(local_state_dir=str(tmp_path))
    ws = LocalWorkspace(settings)  # type: ignore[arg-type]
    (job.folder / "job.json").write_text('{"name": "j1", "status": "Completed", "started_at": 1, "ended_at": 3}')
    metrics = ws.training_metrics("j1")
    assert metrics.step_label == "epoch" and set(metrics.series) == {"train_loss", "eval_loss", "eval_token_f1"}
    assert [s for s, _ in metrics.series["eval_token_f1"]] == [
        1,
        2,
        3,
    ]  # no params in the record: the default num_train_epochs
    assert all(0 <= v <= 1 for _, v in metrics.series["eval_loss"])
    assert metrics.duration_seconds == 2


@pytest.fixture
def two_nodes(monkeypatch):
    """Set before the aml fixture builds the adapter from the settings."""
    monkeypatch.setenv("FINETUNE_OVERRIDES", '{"num_nodes_finetune": 2}')


def test_nodes_come_from_the_submitted_num_nodes_finetune(two_nodes, price, aml, blob_service, storage_env) -> None:
    workspace, _ = aml
    job, tags = submit(blob_service, storage_env, workspace)
    assert report(blob_service, storage_env)["submission"]["parameters"]["num_nodes_finetune"] == 2
    finetune_tree(workspace.mlflow, job, curves())
    send(completed(job, tags))
    tick()  # the delivery only marks the row; the reconciler's tick reads the metrics
    training = report(blob_service, storage_env)["training"]
    assert training["nodes"] == 2
    assert training["gpu_hours"] == pytest.approx(2.0 * 2 * training["gpus_per_node"])


def test_a_passing_tracking_failure_is_read_again_on_the_next_ticks(submitted, aml, blob_service, storage_env) -> None:
    from shared.flows.training_report import PENDING

    job, tags = submitted
    workspace, _ = aml
    finetune_tree(workspace.mlflow, job, curves())
    workspace.mlflow.fail["runs/get"] = (503, '{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}')
    send(completed(job, tags))
    assert row().extra[PENDING] == "0" and "training" not in report(blob_service, storage_env)  # not read yet
    tick()
    assert "HTTP 503" in report(blob_service, storage_env)["training"]["metrics"]
    assert row().extra[PENDING] == "1"
    tick()
    assert row().extra[PENDING] == "2"
    del workspace.mlflow.fail["runs/get"]  # the store is back
    tick()
    assert PENDING not in row().extra
    training = report(blob_service, storage_env)["training"]
    assert training["columns"] == ["step", "loss", "eval_loss"] and training["chart"] == "training.png"


def test_a_failing_store_is_tried_max_tries_times_and_a_refusal_once(submitted, aml, blob_service, storage_env) -> None:
    from shared.flows.training_report import MAX_TRIES, PENDING

    job, tags = submitted
    workspace, _ = aml
    workspace.mlflow.fail["runs/get"] = (500, "oops")
    send(completed(job, tags))
    for _ in range(MAX_TRIES + 2):
        tick()
    tries = len([c for c in workspace.mlflow.calls if c.name == "runs/get"])
    assert tries == MAX_TRIES * 2  # each read: one try and the one retry RetryPolicy makes
    assert PENDING not in row().extra
    assert "HTTP 500" in report(blob_service, storage_env)["training"]["metrics"]


def test_a_refusal_is_not_tried_again(submitted, aml, blob_service, storage_env) -> None:
    from shared.flows.training_report import PENDING

    job, tags = submitted
    workspace, _ = aml
    workspace.mlflow.fail["runs/get"] = (403, '{"error": {"code": "AuthorizationFailed", "message": "no"}}')
    send(completed(job, tags))
    tick()
    assert PENDING not in row().extra
    assert len([c for c in workspace.mlflow.calls if c.name == "runs/get"]) == 1
