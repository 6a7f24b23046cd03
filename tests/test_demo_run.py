"""`make run` (`chatft demo`) end to end, in-process on a small sample: it prints the lifecycle events in order
and leaves, in its run folder, the report with its Training section, a chart a person can open, and the
events as a subscriber gets them (issue 13's "Done when")."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from PIL import Image
from rich.console import Console

from shared.domain import lifecycle_events as le
from shared.domain.training import CHART_SIZE
from shared.entry.offline.demo import EVENTS_FILE, run_demo

ROOT = Path(__file__).resolve().parent.parent
LOOP = [le.SUBMITTED, le.REGISTERED, le.LIVE, le.RETIRED]


def test_the_demo_prints_the_events_and_saves_report_chart_and_events(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    sample = tmp_path / "small.jsonl"
    sample.write_bytes(b"".join((ROOT / "samples" / "chat_sample.jsonl").read_bytes().splitlines(True)[:300]))
    state = tmp_path / "run"
    out = io.StringIO()
    assert run_demo(sample, console=Console(file=out, width=250), state_dir=state) in (0, None)
    printed = out.getvalue()

    assert re.findall(r"event │ (chatft\.[a-z.]+) ", printed) == LOOP
    # issue 20 item 8: the endpoint's evaluation, the same token F1 the stand-in job measured on its test split
    [trained] = re.findall(r"trained \(stand-in\) .* test token F1 ([0-9.]+) vs", printed)
    [(measured_f1, measured_on, job_f1, job_on)] = re.findall(
        r"evaluated +token F1 ([0-9.]+), ROUGE-L [0-9.]+, p50 \d+ ms, p95 \d+ ms, 0 of (\d+) empty or failed on \d+ "
        r"held-out test conversations \(the job measured test token F1 ([0-9.]+) on (\d+)\)",
        printed,
    )
    assert measured_f1 == job_f1 and measured_on == job_on and f"{float(job_f1):.2f}" == trained
    assert printed.index("evaluated ") < printed.index("endpoint live "), "measured before it goes live"
    folder = state / "report"
    assert f"report saved           {folder / 'report.md'}; training chart {folder / 'training.png'}" in printed

    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "## Training" in report and "| epoch | train_loss | eval_loss | eval_token_f1 |" in report
    assert "![training curves](training.png)" in report and "Endpoint hours:" in report
    assert "## Evaluation" in report and "| example | prompt (last user turn) | reference | answer |" in report
    image = Image.open(folder / "training.png")
    image.load()
    assert image.format == "PNG" and image.size == CHART_SIZE

    events = [json.loads(line) for line in (folder / EVENTS_FILE).read_text(encoding="utf-8").splitlines()]
    assert [e["type"] for e in events] == LOOP
    assert {e["specversion"] for e in events} == {"1.0"} and len({e["id"] for e in events}) == len(events)
    assert {e["subject"] for e in events} == {events[0]["subject"]} and events[0]["subject"].startswith("demo-small/")
    submitted, registered, live, retired = (e["data"] for e in events)
    assert submitted["job_name"] and submitted["studio_url"].startswith("file://")
    assert registered["model_id"] and registered["job_name"] == submitted["job_name"]
    assert live["scoring_uri"].startswith("http://127.0.0.1:") and live["smoke_latency_ms"] is not None
    assert live["evaluation"]["samples"] == int(measured_on) and live["evaluation"]["latency_p95_ms"] is not None
    assert "no requests" in retired["reason"] and retired["report"].endswith("report.md")
    assert {e["chatftcid"] for e in events} == {submitted["cid"]}
