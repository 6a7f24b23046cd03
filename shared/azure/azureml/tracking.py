"""A finished job's training metrics from Azure ML's MLflow tracking store.

The documented way (MicrosoftDocs azureml-docs how-to-track-experiments-mlflow.md, "Query & compare
experiments and runs with MLflow": "The Azure Machine Learning Python SDK v2 doesn't provide native
logging or tracking capabilities ... use MLflow"; it recommends `mlflow-skinny` plus the `azureml-mlflow`
plugin for tracking-only use; how-to-use-mlflow-configure-tracking.md for the URI): an `MlflowClient` on the workspace's
`mlflow_tracking_uri` (`ml_client.workspaces.get(name).mlflow_tracking_uri`), the job's run by
its name (a pipeline job's name is its run id), its child runs by `tags.mlflow.parentRunId`, and
`get_metric_history(run_id, key)` for each curve. The fine-tuning step is a grandchild of our
pipeline (chat_completion_pipeline is itself a pipeline component), so the tree is walked a few
levels down and the run that logged a loss, with the most points, is taken.

mlflow-skinny and azureml-mlflow (the `azureml://` tracking-URI plugin) are imported only here,
and only when a job has finished: they are not in requirements.txt (together they pull in about
twenty more packages, FastAPI, uvicorn, databricks-sdk and protobuf among them). Without them the
report says the metrics are unavailable and why, and still gives the job's duration and GPU hours
when known.
"""

from __future__ import annotations

from typing import Any

from shared.domain.training import TrainingMetrics, curve_keys, points

MAX_DEPTH = 3
MLFLOW_MISSING = (
    "reading training metrics from Azure ML needs the packages mlflow-skinny and azureml-mlflow, "
    "which are not installed with the function app"
)


def mlflow_client(workspace: Any) -> Any:
    """MlflowClient(tracking_uri=<the workspace's mlflow_tracking_uri>)."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise RuntimeError(MLFLOW_MISSING) from exc
    return MlflowClient(tracking_uri=workspace.mlflow_tracking_uri)


def _children(client: Any, run: Any) -> list[Any]:
    return list(
        client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    )


def _loss_runs(client: Any, root: Any) -> list[Any]:
    found, level = [], [root]
    for _ in range(MAX_DEPTH + 1):
        found += [r for r in level if any("loss" in k.lower() for k in (r.data.metrics or {}))]
        level = [child for run in level for child in _children(client, run)]
        if not level:
            break
    return found


def read_training_metrics(client: Any, job_name: str) -> TrainingMetrics:
    root = client.get_run(job_name)
    runs = _loss_runs(client, root)
    start, end = root.info.start_time, root.info.end_time
    base = {"started_at": start / 1000 if start else None, "ended_at": end / 1000 if end else None}
    if not runs:
        return TrainingMetrics({}, run_id=root.info.run_id, **base)
    best: dict[str, list[tuple[int, float]]] = {}
    best_run = runs[0]
    for run in runs:
        series = {k: points(client.get_metric_history(run.info.run_id, k)) for k in curve_keys(list(run.data.metrics))}
        if sum(map(len, series.values())) > sum(map(len, best.values())):
            best, best_run = series, run
    return TrainingMetrics(best, step_label="step", run_id=best_run.info.run_id, **base)
