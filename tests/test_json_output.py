"""`--json` on the commands that print data, with the keys held here (issue 21 item 12): a script reads the same
keys in every release. `upload --follow --json` writes JSON lines, one event per line as it happens (as
`az ... --output json` and `gh run watch` users script against); the human lines go to stderr."""

from __future__ import annotations

import json
import os

from tests.test_endpoint_action_commands import ctx  # noqa: F401  (a fake workspace and a settings file)
from tests.test_upload_command import chats, follow, target, upload  # noqa: F401  (target: a fixture)

UPLOADED_KEYS = {"event", "file", "container", "name", "size", "sha256", "replaced", "skipped", "conversations"}
STAGE_KEYS = {"event", "stage", "detail", "at"}
STEP_KEYS = {"event", "step"}
DONE_KEYS = {"event", "stage", "failed", "not_submitted"}
PROGRESS_KEYS = {"event", "job", "studio_url", "unit", "step", "train_loss"}
"""While the job trains: its newest step (or epoch: `unit`) and training loss, named as OpenAI's fine-tuning job
events name them (`data.step`, `data.train_loss`), and its studio link."""


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]  # every stdout line is one JSON object


def test_upload_json_is_one_object_with_stable_keys(target, tmp_path, storage_env) -> None:  # noqa: F811
    result = upload(target, str(chats(tmp_path)), "--json")
    assert result.exit_code == 0, result.output
    (doc,) = events(result.stdout)
    assert doc.keys() == UPLOADED_KEYS
    assert doc["event"] == "uploaded" and doc["name"] == "chats.jsonl" and doc["conversations"] == 30
    assert doc["container"] == storage_env["UPLOAD_CONTAINER"] and len(doc["sha256"]) == 64
    again = upload(target, str(chats(tmp_path)), "--json")
    assert again.exit_code == 0, again.output
    (same,) = events(again.stdout)
    assert same == {"event": "already_uploaded", "name": "chats.jsonl", "sha256": doc["sha256"]}


def test_upload_follow_json_writes_one_line_per_stage(target, tmp_path, storage_env) -> None:  # noqa: F811
    result = follow(target, tmp_path, storage_env, None, "--json")
    assert result.exit_code == 0, result.output
    docs = events(result.stdout)
    assert docs[0]["event"] == "uploaded" and docs[-1] == {
        "event": "done",
        "stage": "live",
        "failed": False,
        "not_submitted": False,
    }
    stages = [d for d in docs if d["event"] == "stage"]
    assert all(d.keys() == STAGE_KEYS for d in stages)
    assert [d["stage"] for d in stages] == ["validated", "submitted", "training", "registered", "deploying", "live"]
    assert {"event": "step", "step": "wait_deployment"} in docs
    assert all(d.keys() == STEP_KEYS for d in docs if d["event"] == "step")
    assert "✓" in result.stderr  # the human lines are still there, on stderr


def test_upload_follow_json_writes_a_progress_line_per_new_step(ctx, blob_service, storage_env, tmp_path) -> None:  # noqa: F811
    """On Azure the fine-tuning step's MLflow metrics as it logs them (tests/mlflow_rest.py, MLflow REST
    `runs/get` and `metrics/get-history`); a look that finds nothing new writes nothing."""
    from tests.mlflow_rest import finetune_tree
    from tests.test_training_progress import looks

    service, _, _, path = ctx

    def training(job: str) -> None:
        looks(service.mlflow, 1)  # the run is not there yet: no line
        finetune_tree(service.mlflow, job, {"loss": [(10, 2.0)]})
        looks(service.mlflow, 3)  # seen on several looks: one line
        finetune_tree(service.mlflow, job, {"loss": [(10, 2.0), (20, 1.5)], "eval_loss": [(20, 1.6)]})
        looks(service.mlflow, 2)

    result = follow(path, tmp_path, storage_env, None, "--json", training=training)
    assert result.exit_code == 0, result.output
    docs = events(result.stdout)
    progress = [d for d in docs if d["event"] == "progress"]
    assert all(d.keys() == PROGRESS_KEYS for d in progress)
    studio = "https://ml.azure.com/runs/chatft-chats-job-a1"
    assert progress == [
        {
            "event": "progress",
            "job": "chatft-chats-job-a1",
            "studio_url": studio,
            "unit": "step",
            "step": s,
            "train_loss": v,
        }
        for s, v in ((10, 2.0), (20, 1.5))
    ]
    kinds = [d["event"] if d["event"] != "stage" else d["stage"] for d in docs]
    assert kinds.index("training") < kinds.index("progress") < kinds.index("registered")


def test_a_rejected_upload_json_carries_the_report(target, tmp_path, storage_env) -> None:  # noqa: F811
    path = chats(tmp_path, b'{"messages": 5}\n')
    result = upload(target, str(path), "--json")
    assert result.exit_code == 1
    (doc,) = events(result.stdout)
    assert doc.keys() == {"event", "file", "report"} and doc["event"] == "rejected"
    assert doc["report"]["valid"] is False and doc["report"]["errors"]


def test_prepare_json_is_the_report_with_the_files_written(tmp_path) -> None:
    """The same object as `chatft validate --json` (report.json), plus `prepared`: split -> file written."""
    from typer.testing import CliRunner

    from shared.entry.cli.app import app
    from tests.chats import valid_file

    src = tmp_path / "in.jsonl"
    src.write_bytes(valid_file(30))
    result = CliRunner().invoke(app, ["prepare", str(src), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    (doc,) = events(result.stdout)
    assert doc == json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["valid"] is True and set(doc["prepared"]) == {"train", "validation", "test"}


DOCTOR_KEYS = {"checks", "passed", "failed"}
CHECK_KEYS = {"name", "ok", "detail", "fix"}


def test_doctor_json_lists_every_check_with_stable_keys(tmp_path, storage_env, azurite, monkeypatch) -> None:
    from typer.testing import CliRunner

    from shared.entry.cli import app as cli
    from tests.test_doctor_target import local_target

    for name in [k for k in os.environ if k.startswith(("AZURE_", "IDENTITY_", "MSI_"))]:
        monkeypatch.delenv(name)  # nothing may ask Azure for a token (as tests/test_doctor_target.py)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    settings, _, _ = local_target(tmp_path, azurite.connection_string, storage_env)
    result = CliRunner().invoke(cli.app, ["doctor", "--settings", str(settings), "--json"])
    assert result.exit_code in (0, 1), result.output
    (doc,) = events(result.stdout)
    assert doc.keys() == DOCTOR_KEYS and doc["checks"]
    assert all(c.keys() == CHECK_KEYS for c in doc["checks"])
    assert doc["failed"] == sum(not c["ok"] for c in doc["checks"]) and result.exit_code == (1 if doc["failed"] else 0)


LIFECYCLE_KEYS = {"ok", "changed", "message", "note"}


def test_keep_json_says_whether_anything_changed(ctx) -> None:  # noqa: F811
    """keep, release, retire and redeploy answer one object with the same keys; a second keep changes nothing."""
    from datetime import timedelta

    from tests.test_endpoint_action_commands import chatft
    from tests.test_janitor import OURS, add

    service, _, later, path = ctx
    add(service, "ep-orphan", dict(OURS), later - timedelta(hours=3))
    first = chatft(path, "keep", "ep-orphan", "--json")
    assert first.exit_code == 0, first.output
    (doc,) = events(first.stdout)
    assert doc.keys() == LIFECYCLE_KEYS and doc["ok"] is True and doc["changed"] is True and doc["note"] is None
    (again,) = events(chatft(path, "keep", "ep-orphan", "--json").stdout)
    assert again["ok"] is True and again["changed"] is False


def test_cancel_json_has_the_same_keys(ctx, blob_service, storage_env) -> None:  # noqa: F811
    from tests.test_endpoint_action_commands import chatft
    from tests.test_guards import upload as submit_upload

    _, _, _, path = ctx
    submit_upload(blob_service, storage_env, 0)
    result = chatft(path, "cancel", "set0.jsonl", "--json")
    assert result.exit_code == 0, result.output
    (doc,) = events(result.stdout)
    assert doc.keys() == LIFECYCLE_KEYS and doc["ok"] is True and doc["changed"] is True


def test_retire_all_json_lists_each_endpoint(ctx) -> None:  # noqa: F811
    from datetime import timedelta

    from tests.test_endpoint_action_commands import chatft
    from tests.test_janitor import OURS, add

    service, _, later, path = ctx
    add(service, "ep-ours", dict(OURS), later - timedelta(hours=3))
    add(service, "ep-theirs", {"team": "x"}, later - timedelta(hours=3))
    result = chatft(path, "retire-all", "--json")
    assert result.exit_code == 0, result.output
    (doc,) = events(result.stdout)
    assert doc.keys() == {"ok", "retired", "others", "left"} and doc["ok"] is True
    assert [r["endpoint"] for r in doc["retired"]] == ["ep-ours"] and doc["others"] == ["ep-theirs"]
    assert all(r.keys() == {"endpoint", "ok", "message"} for r in doc["retired"]) and doc["left"] == []


SCORE_KEYS = {"endpoint", "deployment", "scoring_uri", "input_shape", "request", "answer", "latency_ms"}
"""`az ml online-endpoint invoke --name ENDPOINT --deployment-name DEPLOYMENT --request-file BODY` names the three
things a script needs to ask again (https://learn.microsoft.com/cli/azure/ml/online-endpoint#az-ml-online-endpoint-invoke);
`az ml online-endpoint show` calls the address `scoring_uri`; the answer and the latency as chatft's smoke test
records them (`latency_ms`)."""


def test_score_json_is_one_object_with_the_request_it_sent(ctx, blob_service, storage_env) -> None:  # noqa: F811
    from shared.azure.scoring import InputShape, request_body
    from tests.scoring_server import ScoringServer
    from tests.test_endpoint_action_commands import chatft, live_upload

    service, _, _, path = ctx
    endpoint = live_upload(service, blob_service, storage_env)
    with ScoringServer(key="k", deployment="demo", answer="Halve it.") as server:
        service.online_endpoints._json[endpoint]["properties"]["scoringUri"] = server.url
        result = chatft(path, "score", "How do I lower the learning rate?", "--json")
    assert result.exit_code == 0, result.output
    (doc,) = events(result.stdout)
    assert doc.keys() == SCORE_KEYS
    assert doc["endpoint"] == endpoint and doc["deployment"] == "demo" and doc["scoring_uri"] == server.url
    assert doc["answer"] == "Halve it." and isinstance(doc["latency_ms"], int)
    [request] = server.requests
    assert doc["request"] == json.loads(request["body"])  # what was sent, to send again with curl or az
    messages = [{"role": "user", "content": "How do I lower the learning rate?"}]
    assert doc["request"] == json.loads(json.dumps(request_body(messages, InputShape(doc["input_shape"]))))


def test_report_json_is_report_json_with_the_files_saved(ctx, blob_service, storage_env, tmp_path) -> None:  # noqa: F811
    """The same object as the report.json saved (as `chatft prepare --json`), plus `saved`: file -> path."""
    from tests.deploy_flow import SHA
    from tests.test_endpoint_action_commands import chatft, live_upload

    service, _, _, path = ctx
    live_upload(service, blob_service, storage_env)
    folder = tmp_path / "saved"
    result = chatft(path, "report", SHA[:10], "--out", str(folder), "--json")
    assert result.exit_code == 0, result.output
    (doc,) = events(result.stdout)
    saved = doc.pop("saved")
    assert doc == json.loads((folder / "report.json").read_text())
    assert saved == {name: str(folder / name) for name in ("report.md", "report.json", "events.jsonl")}
    assert "# chatft validation report" not in result.stdout, "report.md is saved, not printed, with --json"


NO_JSON = {
    "dev": "a long-running host: its lines are a log",
    "demo": "a walkthrough printed for a person",
    "logs": "the job's log as text, as `az ml job stream` prints it",
}


def test_every_command_that_prints_data_has_json() -> None:
    import typer.main

    from shared.entry.cli.app import app

    commands = typer.main.get_command(app).commands
    for name, command in commands.items():
        has_json = any("--json" in p.opts for p in command.params)
        if name in NO_JSON:
            continue
        assert has_json, f"chatft {name} prints data but has no --json"
