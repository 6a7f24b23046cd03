"""A pipeline job's log files from Azure ML's run history, read the way `az ml job stream` reads them.

`JobOperations.stream` (azure/ai/ml/operations/_job_operations.py) cannot serve `chatft logs`: it blocks until the
job ends, prints to sys.stdout itself, prints no log at all for a job that already ended (its loop runs only
while the status is in progress: `stream_logs_until_completion` in operations/_job_ops_helper.py), and it refuses a
pipeline's child step (PipelineChildJobError), where the fine-tuning output is. So this reads the same routes it
reads, once per call, and leaves printing and polling to the caller (shared.flows.job_logs):

  - GET jobs/{name} (ARM, `jobs.get`): the status and the studio link;
  - the run history at the workspace's discovery `api` URL (`JobOperations._runs_operations`, built from
    `_get_workspace_url`): GET history/v1.0/.../runs/{run id}/details, whose `logFiles` maps each log file's name
    to a SAS URL (`RunDetails.log_files`, azure/ai/ml/_restclient/runhistory/models/_models_py3.py), and
    GET .../runs/{run id}/children for the steps (`RunOperations.get_run_children`, what `jobs.list(
    parent_job_name=...)` calls; chat_completion_pipeline is itself a pipeline component, so its steps are
    grandchildren, walked MAX_DEPTH levels down as shared.azure.azureml.tracking walks them);
  - each file's text with `download_text_from_url` over the client's own HTTP pipeline and retries (an absent
    blob is "", as the SDK reads it).

Which files: the SDK's own choice (`_get_sorted_filtered_logs`): the pipeline's `logs/azureml/executionlogs.txt`
(what `az ml job stream` prints for a pipeline job), and for each step its primary process's
`user_logs/std_log.txt` (the common runtime's; a legacy `azureml-logs/NN_*.txt` otherwise: "Under Outputs + logs,
you'll find the output of the script in user_logs/std_log.txt", Azure ML's tutorial on training a model in
MicrosoftDocs). A step's files are named `<step>/<file>`. The private helpers are used on purpose, to print exactly what the SDK prints; the tests run
them against tests/aml_rest.py, so a change in the SDK shows there.
"""

from __future__ import annotations

from typing import Any

from shared.domain.workspace import JobLog

MAX_DEPTH = 3
MAX_RUNS = 50
"""Steps read at most (chat_completion_pipeline has about six): a job with more shows its first MAX_RUNS."""


def read_job_log(jobs: Any, name: str) -> JobLog | None:
    """The pipeline job `name`'s log files so far, and its status; None when the workspace has no such job."""
    from azure.ai.ml._utils.utils import create_requests_pipeline_with_retry
    from azure.core.exceptions import ResourceNotFoundError

    try:
        job = jobs.get(name)
    except ResourceNotFoundError:
        return None
    runs = jobs._runs_operations
    pipeline = create_requests_pipeline_with_retry(requests_pipeline=jobs._requests_pipeline)
    files = _files(runs, pipeline, name, "pipeline", "")
    try:
        steps = _steps(runs, name, 1, [])
    except ResourceNotFoundError:  # just submitted: the run history does not have it yet
        steps = []
    for label, run_id in steps:
        files += _files(runs, pipeline, run_id, "command", f"{label}/")
    status = getattr(job.status, "value", job.status)  # a generated str-Enum (JobStatus), as client._text reads it
    return JobLog(str(status or ""), tuple(files), getattr(job, "studio_url", None))


def _steps(runs: Any, run_id: str, depth: int, found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(label, run id) of each step under `run_id`, in the order the run history lists them: the runs without
    children, MAX_DEPTH levels down at most."""
    for child in runs.get_run_children(run_id):
        if child is None or len(found) >= MAX_RUNS:  # None: a run the SDK could not parse (it skips those too)
            continue
        before = len(found)
        if depth < MAX_DEPTH:
            _steps(runs, child.name, depth + 1, found)
        if len(found) == before:
            found.append((child.display_name or child.name, child.name))
    return found


def _files(runs: Any, pipeline: Any, run_id: str, job_type: str, prefix: str) -> list[tuple[str, str]]:
    from azure.ai.ml._utils.utils import download_text_from_url
    from azure.ai.ml.operations._job_ops_helper import _get_sorted_filtered_logs
    from azure.ai.ml.operations._run_history_constants import RunHistoryConstants
    from azure.core.exceptions import ResourceNotFoundError

    try:
        logs = runs.get_run_details(run_id).log_files or {}
    except ResourceNotFoundError:  # just submitted: the run history does not have it yet
        return []
    timeout = RunHistoryConstants._DEFAULT_GET_CONTENT_TIMEOUT
    return [
        (prefix + log, download_text_from_url(logs[log], pipeline, timeout=timeout))
        for log in _get_sorted_filtered_logs(logs, job_type)
    ]
