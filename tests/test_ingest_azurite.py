"""The blob-triggered ingest function end to end on Azurite, invoked as the host would."""

from __future__ import annotations

import hashlib
import io
import json
import logging

import pytest
from azure.core.exceptions import ResourceNotFoundError

import function_app
import shared.entry.app_wiring
from shared.domain.chatdata.prepare import SplitFiles
from shared.domain.chatdata.validator import validate_stream
from tests.chats import line, valid_file
from tests.hosting import blob_client_for_trigger, find_function, invoke_blob_trigger


@pytest.fixture(autouse=True)
def fresh_runtime(storage_env, blob_service):
    """Per-test settings and containers; the per-process caches must not leak between tests."""
    shared.entry.app_wiring.reset()
    blob_service.create_container(storage_env["UPLOAD_CONTAINER"])
    yield
    shared.entry.app_wiring.reset()


def upload(blob_service, storage_env, name: str, data: bytes):
    client = blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], name)
    client.upload_blob(data)
    return client


def prepared(blob_service, storage_env) -> dict[str, bytes]:
    container = blob_service.get_container_client(storage_env["PREPARED_CONTAINER"])
    if not container.exists():
        return {}
    return {b.name: container.download_blob(b.name).readall() for b in container.list_blobs()}


def trigger(name: str):
    return invoke_blob_trigger(function_app.app, "ingest_upload", name)


def test_accepted_upload_writes_split_and_report_next_to_each_other(
    blob_service, storage_env, tmp_path, caplog
) -> None:
    data = valid_file(60)
    upload(blob_service, storage_env, "Team A/Support Chats.jsonl", data)
    with caplog.at_level(logging.INFO, logger="chatft"):
        trigger("Team A/Support Chats.jsonl")
    sha = hashlib.sha256(data).hexdigest()
    prefix = f"team-a-support-chats/{sha[:16]}"
    blobs = prepared(blob_service, storage_env)
    assert sorted(blobs) == sorted(
        f"{prefix}/{n}" for n in ("report.json", "report.md", "test.jsonl", "train.jsonl", "validation.jsonl")
    )
    report = json.loads(blobs[f"{prefix}/report.json"])
    assert report["valid"] is True and report["sha256"] == sha and report["conversations"] == 60
    assert report["source"] == f"{storage_env['UPLOAD_CONTAINER']}/Team A/Support Chats.jsonl"
    assert report["prepared"]["train"] == f"{storage_env['PREPARED_CONTAINER']}/{prefix}/train.jsonl"
    assert "ACCEPTED" in blobs[f"{prefix}/report.md"].decode()
    # identical to what `chatft prepare` writes for the same bytes
    with SplitFiles(tmp_path) as sink:
        validate_stream(io.BytesIO(data), source="x", sink=sink)
        local = sink.commit()
    for name, path in local.items():
        assert blobs[f"{prefix}/{name}.jsonl"] == path.read_bytes()
    steps = [r.getMessage() for r in caplog.records if r.name == "chatft"]
    assert any(m.startswith("chatft ingest.received ") for m in steps)
    assert any(m.startswith("chatft ingest.prepared ") and f'"cid":"{sha[:12]}"' in m for m in steps)


def test_rejected_upload_leaves_only_a_report_naming_line_and_path(blob_service, storage_env) -> None:
    data = valid_file(20) + line({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 5}]})
    upload(blob_service, storage_env, "bad.jsonl", data)
    trigger("bad.jsonl")
    blobs = prepared(blob_service, storage_env)
    sha = hashlib.sha256(data).hexdigest()
    assert sorted(blobs) == [f"bad/{sha[:16]}/report.json", f"bad/{sha[:16]}/report.md"]
    report = json.loads(blobs[f"bad/{sha[:16]}/report.json"])
    assert report["valid"] is False
    assert {"line": 21, "code": "content-not-string", "path": "messages[1].content"}.items() <= report["errors"][
        0
    ].items()
    assert "messages[1].content" in blobs[f"bad/{sha[:16]}/report.md"].decode()


def test_names_that_are_not_jsonl_are_ignored(blob_service, storage_env) -> None:
    upload(blob_service, storage_env, "notes.txt", b"hello")
    upload(blob_service, storage_env, "data.json", valid_file(20))
    trigger("notes.txt")
    trigger("data.json")
    assert prepared(blob_service, storage_env) == {}


def test_repeated_trigger_is_idempotent_and_never_touches_the_upload(blob_service, storage_env) -> None:
    data = valid_file(40)
    client = upload(blob_service, storage_env, "chats.jsonl", data)
    before = client.get_blob_properties()
    trigger("chats.jsonl")
    first = prepared(blob_service, storage_env)
    trigger("chats.jsonl")
    assert prepared(blob_service, storage_env) == first
    after = client.get_blob_properties()
    assert after.etag == before.etag and client.download_blob().readall() == data


def test_identical_bytes_under_another_name_prepare_to_the_same_content_address(blob_service, storage_env) -> None:
    data = valid_file(40)
    upload(blob_service, storage_env, "a.jsonl", data)
    upload(blob_service, storage_env, "b.jsonl", data)
    trigger("a.jsonl")
    trigger("b.jsonl")
    blobs = prepared(blob_service, storage_env)
    sha16 = hashlib.sha256(data).hexdigest()[:16]
    assert blobs[f"a/{sha16}/train.jsonl"] == blobs[f"b/{sha16}/train.jsonl"]


def test_a_failure_mid_stream_leaves_a_report_and_is_raised_for_retry(blob_service, storage_env) -> None:
    upload(blob_service, storage_env, "gone.jsonl", valid_file(20))
    function = find_function(function_app.app, "ingest_upload")
    client = blob_client_for_trigger(function, "gone.jsonl")
    client.client().delete_blob()  # the blob disappears between the trigger and the read
    with pytest.raises(ResourceNotFoundError):
        function.get_user_function()(client)
    blobs = prepared(blob_service, storage_env)
    [(name, body)] = blobs.items()
    assert name.startswith("gone/_failed/")
    note = json.loads(body)
    assert note["source"].endswith("/gone.jsonl") and "ResourceNotFound" in note["failed"]


HOSTILE_UPLOADS = {
    "non-utf8": (
        b'{"messages":[{"role":"user","content":"caf\xe9"},{"role":"assistant","content":"oui"}]}\n',
        "invalid-utf8",
    ),
    "deep-prompt": (
        b'{"prompt":' + b"[" * 1000 + b"]" * 1000 + b',"messages":[{"role":"user","content":"a"}]}\n',
        "too-few-messages",
    ),
    "too-deep": (b'{"prompt":' + b"[" * 5000 + b"]" * 5000 + b"}\n", "json-too-deep"),
    "utf16": (valid_file(20).decode().encode("utf-16"), "wrong-encoding"),
    "cr-only": (valid_file(20).replace(b"\n", b"\r"), "cr-line-endings"),
    "pretty": (json.dumps([{"messages": []}] * 3, indent=2).encode(), "not-jsonl"),
    "empty": (b"", "empty-file"),
    "binary": (bytes(range(256)) * 64, "invalid-utf8"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_UPLOADS))
def test_a_hostile_upload_is_rejected_with_a_report_and_never_raises(blob_service, storage_env, kind: str) -> None:
    """Was: a UnicodeDecodeError/RecursionError on every delivery, no report, and the blob poisoned."""
    data, code = HOSTILE_UPLOADS[kind]
    name = f"hostile-{kind}.jsonl"
    upload(blob_service, storage_env, name, data)
    trigger(name)  # returns: the host has nothing to retry
    sha = hashlib.sha256(data).hexdigest()
    blobs = prepared(blob_service, storage_env)
    report = json.loads(blobs[f"hostile-{kind}/{sha[:16]}/report.json"])
    assert report["valid"] is False and report["sha256"] == sha
    assert code in report["error_totals"]
    assert report["stats"]["bytes_read"] == len(data), "the whole blob was read and hashed"
    assert "REJECTED" in blobs[f"hostile-{kind}/{sha[:16]}/report.md"].decode()
    assert not any("_failed/" in name for name in blobs)


def test_the_report_of_a_huge_broken_upload_stays_small(blob_service, storage_env) -> None:
    """Was: a 6.9 MB report.json and 3.9 MB report.md for 1 M alternating good and bad lines."""
    data = b"".join(line({"messages": [{"role": "user", "content": f"q{i}"}]}) + b"{nope\n" for i in range(20_000))
    upload(blob_service, storage_env, "broken.jsonl", data)
    trigger("broken.jsonl")
    sha = hashlib.sha256(data).hexdigest()
    blobs = prepared(blob_service, storage_env)
    report = json.loads(blobs[f"broken/{sha[:16]}/report.json"])
    assert report["error_totals"] == {
        "invalid-json": 20_000,
        "too-few-messages": 20_000,
        "no-assistant": 20_000,
        "too-few-conversations": 1,
    }
    assert len(blobs[f"broken/{sha[:16]}/report.json"]) < 64_000
    assert len(blobs[f"broken/{sha[:16]}/report.md"]) < 32_000
