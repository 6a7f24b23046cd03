"""`--follow` never looks stuck offline (issue 21, item 6): the sample settings run the reconciler and the
janitor every few seconds, and `chatft dev` lists its functions with each timer's next run, as `func start`
lists "Functions:" with their triggers and the host logs a timer's next occurrences
(https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions: six fields,
seconds first)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import function_app
from shared.entry.offline.dev_session import DevSession
from shared.local.host import LocalHost, next_run

SAMPLE = Path(__file__).resolve().parents[1] / "local.settings.sample.json"


def test_offline_the_reconciler_and_janitor_run_every_few_seconds() -> None:
    """Was: every 2 and 15 minutes, so `--follow` sat on `deploying … wait_endpoint` for two minutes."""
    values = json.loads(SAMPLE.read_text())["Values"]
    assert values["ML_BACKEND"] == "local"
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for setting, most in (("DEPLOY_RECONCILE_SCHEDULE", 10), ("JANITOR_SCHEDULE", 60)):
        first = next_run(values[setting], start)
        assert next_run(values[setting], first) - first <= timedelta(seconds=most), setting


def test_dev_lists_each_function_and_each_timers_next_run(tmp_path, monkeypatch) -> None:
    """Was: `chatft dev` named its functions only, so nobody knew when the next tick was."""
    schedules = {"DEPLOY_RECONCILE_SCHEDULE": "*/5 * * * * *", "JANITOR_SCHEDULE": "*/30 * * * * *"}
    for name, value in {**schedules, "UPLOAD_CONTAINER": "chat-uploads"}.items():
        monkeypatch.setenv(name, value)
    host = LocalHost(function_app.app, port=7071, poll_seconds=1.0, say=lambda _: None)
    now = datetime(2026, 1, 1, 12, 0, 1, tzinfo=timezone.utc)
    lines = {line.split()[0]: " ".join(line.split()[1:]) for line in host.listing(now)}
    at = (now + timedelta(seconds=4)).astimezone().strftime("%H:%M:%S")
    assert lines["deploy_reconciler"] == f"timer */5 * * * * *: next run {at} (in 4s)"
    assert lines["endpoint_janitor"].endswith("(in 29s)")
    assert lines["job_events"] == "event POST http://127.0.0.1:7071/runtime/webhooks/EventGrid?functionName=job_events"
    assert lines["ingest_upload"].startswith("blob chat-uploads/{name} (new blobs by")
    overrides = {"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(tmp_path / "state"), **schedules}
    with DevSession(overrides=overrides, port=0, say=lambda _: None, reuse_azurite=False) as dev:
        text = dev.describe()
    assert any(line.startswith("functions ") for line in text)
    assert any("deploy_reconciler" in line and "timer  */5 * * * * *: next run" in line for line in text)
    assert "training  local backend: a retrieval model is trained instead of fine-tuning the foundation model" in text


def test_dev_says_which_trainer_trains_and_refuses_lora_it_cannot_run(tmp_path, monkeypatch) -> None:
    """Issue 22: `chatft dev --trainer lora` as `chatft demo --trainer lora`; a LOCAL_BASE_MODEL that cannot be read
    is one line before anything starts (no Azurite, no host), as preflight would say it."""
    from typer.testing import CliRunner

    from shared.entry.cli.app import app

    overrides = {"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(tmp_path / "state"), "LOCAL_TRAINER": "lora"}
    with DevSession(overrides=overrides, port=0, say=lambda _: None, reuse_azurite=False) as dev:
        text = dev.describe()
    assert any(line.startswith("training  local backend: LoRA fine-tuning of tiny on the ") for line in text)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOCAL_BASE_MODEL", str(tmp_path / "no-such-model"))
    result = CliRunner().invoke(app, ["dev", "--trainer", "lora", "--port", "0"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("dev failed: ") and "LOCAL_BASE_MODEL" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / ".chatft").exists(), "nothing started"


def test_a_timer_tick_with_nothing_to_say_prints_nothing() -> None:
    """With a tick every 5 s, "deploy_reconciler ok" twelve times a minute would bury what matters."""
    import logging

    said: list[str] = []
    host = LocalHost(function_app.app, port=0, say=said.append)
    logging.getLogger("chatft").addHandler(host._steps)
    try:
        assert host._invoke("timer", "*/5 * * * * *", "deploy_reconciler", lambda: None)
        assert said == []
        warn = lambda: logging.getLogger("chatft").warning('chatft reconcile.failed {"error": "boom"}')  # noqa: E731
        assert host._invoke("timer", "*/5 * * * * *", "deploy_reconciler", warn)
    finally:
        logging.getLogger("chatft").removeHandler(host._steps)
    assert said and "deploy_reconciler reconcile.failed (error boom)" in said[0]


def test_a_schedule_naming_both_days_fires_when_both_match_as_the_functions_host_does() -> None:
    """The Functions host computes timer schedules with NCrontab, which picks a day by the day-of-month field and
    then requires the day-of-week field too (atifaziz/NCrontab, NCrontab/CrontabSchedule.cs,
    TryGetNextOccurrence: `if (_daysOfWeek.Contains((int)nextTime.DayOfWeek)) return nextTime;`), where cron, and
    croniter by default, take either. Was: `0 0 0 13 * 5` fired on Friday 2 January 2026 locally."""
    friday_13th = "0 0 0 13 * 5"
    assert next_run(friday_13th, datetime(2026, 1, 1, tzinfo=timezone.utc)) == datetime(
        2026, 2, 13, tzinfo=timezone.utc
    )
    assert next_run("0 30 9 * * 1-5", datetime(2026, 1, 2, 10, tzinfo=timezone.utc)) == datetime(
        2026, 1, 5, 9, 30, tzinfo=timezone.utc
    ), "a weekday schedule (day of month *) is unchanged"
