"""The Event Grid handler answers well within Event Grid's 30 s, on a cold instance.

Event Grid waits 30 s for a push delivery's answer and then counts it as failed and retries it ("Event Grid
message delivery and retry", MicrosoftDocs azure-docs articles/event-grid/delivery-and-retry.md: "Event Grid
waits 30 seconds for a response after delivering a message"). A delivery therefore does only the import,
the classification, the model registration and the ledger write; the training metrics (up to a 20 s read,
shared/azure/azureml/tracking.py) are read by the reconciler's next tick, which the row's `training_pending`
mark asks for (shared/flows/training_report.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.deploy_flow import submit

ROOT = Path(__file__).resolve().parent.parent
WELL_UNDER = 15.0
"""Half of Event Grid's 30 s: room for the host's own start and a loaded machine."""


def test_a_cold_delivery_registers_without_reading_metrics_and_the_tick_writes_training(
    aml, blob_service, storage_env
) -> None:
    """A fresh interpreter imports function_app, then receives RunCompleted: the delivery pays azure.ai.ml's
    real import (tests/cold_delivery.py), the tracking store is slow, and the delivery must not touch it."""
    workspace, _ = aml
    job, tags = submit(blob_service, storage_env, workspace)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.cold_delivery", json.dumps({"job": job, "tags": tags})],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["cold"], "function_app imported azure.ai.ml itself: the delivery's import was not measured"
    assert result["models_registered"] == 1 and result["unserved"] == []
    assert result["tracking_reads"] == [], f"the delivery read the tracking store: {result['tracking_reads']}"
    assert result["seconds"] < WELL_UNDER, f"a cold delivery took {result['seconds']} s (Event Grid waits 30 s)"
    assert result["training_after_delivery"] is None
    training = result["training_after_tick"]
    assert training and training["status"] == "completed" and training["columns"] == ["step", "loss", "eval_loss"]
