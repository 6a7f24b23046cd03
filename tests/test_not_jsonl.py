"""A file whose name the ingest function will not take (issue 21, item 1): `chatft upload` refuses it with the
command to copy, the ingest function logs that it ignored one (a warning `chatft dev` prints), and
`chatft status` names such a blob (--all lists it) instead of "no upload matches".

The refusal, not a rename: `az storage blob upload --name` stores the name it is given
(https://learn.microsoft.com/cli/azure/storage/blob#az-storage-blob-upload), and OpenAI's fine-tuning
uploads take JSONL only (https://platform.openai.com/docs/api-reference/files/create: "The Fine-tuning API
only supports .jsonl files").
"""

from __future__ import annotations

import json
import logging

import pytest

import function_app
from shared.local.host import LocalHost
from tests.hosting import find_function
from tests.test_status_command import status
from tests.test_upload_command import blobs, chats, settings_for, upload


@pytest.fixture
def target(storage_env, tmp_path, monkeypatch):
    return settings_for(storage_env, tmp_path, monkeypatch)


def test_upload_refuses_a_json_name_with_the_command_to_copy(target, tmp_path, blob_service, storage_env) -> None:
    """Was: uploaded, then nothing happened (the ingest function ignores the name) and --follow waited 6 h."""
    path = chats(tmp_path, name="team data.json")
    result = upload(target, str(path), "--follow")
    assert result.exit_code == 2, result.output
    line = " ".join(result.stderr.split())
    assert "the ingest function takes only names ending in .jsonl" in line
    assert f"`chatft upload '{path}' --name 'team data.jsonl'`" in line
    named = upload(target, str(chats(tmp_path)), "--name", "chats.json")
    assert named.exit_code == 2 and "--name chats.json:" in named.stderr and "--name chats.jsonl" in named.stderr
    assert blobs(blob_service, storage_env["UPLOAD_CONTAINER"]) == {}
    assert upload(target, str(path), "--name", "team data.jsonl").exit_code == 0


def test_the_ingest_says_it_ignored_a_json_blob_and_status_lists_it(target, blob_service, storage_env) -> None:
    """Was: `chatft dev` printed `ingest_upload ok` and `chatft status data.json` said "no upload matches"."""
    container = blob_service.get_container_client(storage_env["UPLOAD_CONTAINER"])
    container.create_container()
    container.upload_blob("data.json", b'{"messages": []}\n')
    said: list[str] = []
    host = LocalHost(function_app.app, port=0, say=said.append)
    function = find_function(function_app.app, "ingest_upload")
    from shared.local.host import blob_binding

    logging.getLogger("chatft").addHandler(host._steps)
    try:
        host._invoke(
            "blob",
            "up/data.json",
            "ingest_upload",
            lambda: function.get_user_function()(blob_binding(function, "data.json")),
        )
    finally:
        logging.getLogger("chatft").removeHandler(host._steps)
    assert "ingest_upload ingest.ignored (reason not .jsonl)" in said[0]
    one = json.loads(status(target, "data.json", "--json").stdout)
    assert one["stage"] == "ignored" and "--name data.jsonl" in one["detail"]
    listed = json.loads(status(target, "--all", "--json").stdout)
    assert [(v["name"], v["stage"]) for v in listed] == [("data.json", "ignored")]
    assert json.loads(status(target, "--json").stdout) == []  # the recent list stays about uploads
