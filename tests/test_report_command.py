"""`chatft report UPLOAD [--out DIR]`: the report a person reads without Storage Explorer, against any target.

Through the real command line with `--settings` (as against a deployed app), on Azurite and the REAL
azure-ai-ml MLClient over the in-memory Azure ML service (tests/aml_rest.py). The events saved are the
CloudEvents 1.0 structured JSON form (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/
json-format.md: specversion, id, source, type, subject, time, datacontenttype, data, extensions as top-level
attributes), with the ids the app publishes (shared.domain.lifecycle_events.earned).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from shared.domain.lifecycle_events import LIVE, REGISTERED, SUBMITTED
from shared.domain.training import CHART_FILE
from tests.deploy_flow import SHA, row
from tests.dev_process import ROOT, Dev, folder_env
from tests.dev_process import chatft as chatft_in
from tests.test_endpoint_action_commands import chatft, ctx, live_upload  # noqa: F401  (ctx is a fixture)


def test_report_prints_report_md_and_saves_it_with_the_chart_and_the_events(
    ctx,  # noqa: F811
    blob_service,
    storage_env,
    tmp_path,
) -> None:
    service, _, _, path = ctx
    endpoint = live_upload(service, blob_service, storage_env)
    out = tmp_path / "saved"

    result = chatft(path, "report", SHA[:10], "--out", str(out))

    assert result.exit_code == 0, result.output
    prefix = f"{row().key.dataset}/{SHA[:16]}"
    container = blob_service.get_container_client(storage_env["PREPARED_CONTAINER"])
    markdown = container.get_blob_client(f"{prefix}/report.md").download_blob().readall().decode()
    assert result.stdout.startswith("# chatft validation report: ACCEPTED") and markdown in result.stdout
    assert (out / "report.md").read_text() == markdown
    assert json.loads((out / "report.json").read_text())["deployment"]["endpoint"] == endpoint
    assert not (out / CHART_FILE).exists(), "the in-memory service logs no metrics: no chart was drawn"
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == [SUBMITTED, REGISTERED, LIVE]
    assert all(e["specversion"] == "1.0" and e["subject"] == f"{row().key.dataset}/{SHA}" for e in events)
    assert events[-1]["data"]["endpoint"] == endpoint and events[-1]["chatftcid"] == row().cid
    assert "saved report.md" in result.stderr


def test_report_of_an_unknown_upload_is_one_line_and_exit_2(ctx, tmp_path) -> None:  # noqa: F811
    _, _, _, path = ctx
    result = chatft(path, "report", "nothing-here.jsonl", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "nothing-here.jsonl" in error and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="chatft dev's PR_SET_PDEATHSIG is Linux's")
def test_report_reads_the_running_dev_session_from_a_second_shell(tmp_path: Path) -> None:
    """`chatft dev` holds its Azurite: the report (with the local job's training.png) is read through it."""
    lines = (ROOT / "samples" / "chat_sample.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "small.jsonl").write_bytes(b"".join(lines[:300]))
    env = folder_env(DEPLOY_RECONCILE_SCHEDULE="*/1 * * * * *")
    dev = Dev(tmp_path, env)
    try:
        done = chatft_in(tmp_path, env, "upload", "small.jsonl", "--follow", "--interval", "0.2", "--timeout", "90s")
        assert done.returncode == 0, done.stdout + done.stderr
        result = chatft_in(tmp_path, env, "report", "small.jsonl")
    finally:
        dev.stop()
    assert result.returncode == 0, result.stderr
    folder = next((tmp_path / "chatft-reports").glob("small-*"))
    assert result.stdout == (folder / "report.md").read_text() and "## Training" in result.stdout
    assert (folder / CHART_FILE).read_bytes().startswith(b"\x89PNG")
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == [SUBMITTED, REGISTERED, LIVE]
    assert "Traceback" not in result.stderr
