"""`--json` on the commands that print data, with the keys held here (issue 21 item 12): a script reads the same
keys in every release. `upload --follow --json` writes JSON lines, one event per line as it happens (as
`az ... --output json` and `gh run watch` users script against); the human lines go to stderr."""

from __future__ import annotations

import json

from tests.test_upload_command import chats, follow, target, upload  # noqa: F401  (target: a fixture)

UPLOADED_KEYS = {"event", "file", "container", "name", "size", "sha256", "replaced", "skipped", "conversations"}
STAGE_KEYS = {"event", "stage", "detail", "at"}
STEP_KEYS = {"event", "step"}
DONE_KEYS = {"event", "stage", "failed", "not_submitted"}


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


def test_a_rejected_upload_json_carries_the_report(target, tmp_path, storage_env) -> None:  # noqa: F811
    path = chats(tmp_path, b'{"messages": 5}\n')
    result = upload(target, str(path), "--json")
    assert result.exit_code == 1
    (doc,) = events(result.stdout)
    assert doc.keys() == {"event", "file", "report"} and doc["event"] == "rejected"
    assert doc["report"]["valid"] is False and doc["report"]["errors"]
