"""The training report agrees with itself (issue 21 item 13): the stand-in trains for the job's num_train_epochs,
and the DeepSpeed line says what the parameters sent say (the chart: tests/test_training_chart.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import shared.local.train_job as train_job
from shared.domain.chatdata.report import render_markdown
from shared.domain.finetune.choices import UploadChoices
from shared.domain.workspace import FinetuneRequest
from shared.local.backend import LocalWorkspace
from shared.local.state import read_json
from shared.settings import Settings
from tests.test_local_train_job import job  # noqa: F401  (a job folder with splits in Azurite)


def _epochs_logged(folder: Path) -> list[int]:
    metrics = read_json(folder / "metrics.json")["metrics"]
    return sorted({m["step"] for m in metrics if m["key"] == "train_loss"})


@pytest.mark.parametrize("epochs", [1, 2, 4])
def test_the_stand_in_trains_for_the_jobs_num_train_epochs(job: Path, epochs: int) -> None:  # noqa: F811
    record = json.loads((job / "job.json").read_text())
    (job / "job.json").write_text(json.dumps({**record, "params": {"num_train_epochs": epochs}}))
    assert train_job.run(job) == 0
    assert _epochs_logged(job) == list(range(1, epochs + 1))


def test_a_job_record_without_params_trains_the_default_epochs(job: Path) -> None:  # noqa: F811
    """A job.json written before the parameters were kept (a resumed job) trains chatft's default, 3."""
    assert train_job.run(job) == 0
    assert _epochs_logged(job) == [1, 2, 3]


def _submit(tmp_path: Path, choices: UploadChoices) -> tuple[dict, Path]:
    """Submit to the local backend; its job (no data here) fails at once, and the backend is shut down."""
    workspace = LocalWorkspace(Settings.from_env({"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(tmp_path / "s")}))
    try:
        request = FinetuneRequest(job_name="j-1", data_uris={}, tags={}, cid="c", choices=choices)
        result = workspace.submit_finetune(request)
    finally:
        workspace.shutdown()
    return result.parameters, tmp_path / "s" / "jobs" / "j-1" / "job.json"


def test_the_local_job_record_keeps_the_parameters_it_was_sent(tmp_path: Path) -> None:
    params, record = _submit(tmp_path, UploadChoices(epochs="2"))
    assert params["num_train_epochs"] == 2
    assert read_json(record)["params"] == params


def test_deepspeed_off_sends_no_stage_and_the_report_says_off(tmp_path: Path) -> None:
    """The local stand-in runs without DeepSpeed: it sends apply_deepspeed=false and no deepspeed_stage (the
    component reads the stage only when DeepSpeed is on), and the report says "off", not "stage 2"."""
    params, _ = _submit(tmp_path, UploadChoices())
    assert params["apply_deepspeed"] == "false" and "deepspeed_stage" not in params
    md = _report({"status": "submitted", "parameters": params})
    assert "- DeepSpeed: off (apply_deepspeed=false)" in md
    assert "deepspeed_stage" not in md


def test_the_deepspeed_line_follows_the_parameters_sent() -> None:
    """Phi-4's model_specific_defaults turn DeepSpeed stage 3 on (Azure/azureml-assets
    assets/models/system/Phi-4/spec.yaml, tags.model_specific_defaults): the line says the stage that was sent."""
    md = _report({"status": "submitted", "parameters": {"apply_deepspeed": "true", "deepspeed_stage": "3"}})
    assert "- DeepSpeed: stage 3 (apply_deepspeed=true, deepspeed_stage=3)" in md


def _report(submission: dict) -> str:
    return render_markdown(
        {
            "source": "x.jsonl",
            "valid": True,
            "conversations": 20,
            "splits": {"train": 18, "validation": 1, "test": 1},
            "stats": {"lines": 20, "blank_lines": 0, "bytes_read": 1, "conversations": 0},
            "error_totals": {},
            "warning_totals": {},
            "errors": [],
            "warnings": [],
            "submission": submission,
        }
    )
