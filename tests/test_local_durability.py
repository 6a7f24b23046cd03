"""Nothing `chatft dev` acknowledged is lost when it dies: kill -9 of dev keeps every storage write the user was
told about (its Azurite gets SIGTERM, saves, and exits; the next start waits for that).

Azurite keeps blob and table metadata in LokiJS databases it saves every 5 s and when it closes on SIGTERM or
SIGINT (node_modules/azurite/dist/src/azurite.js: `process.once("SIGTERM", () => shutdown(...))`; each
Loki*MetadataStore is built with `autosave: true, autosaveInterval: 5000`, and lokijs' `Loki.prototype.close`
saves a dirty database). A SIGKILL loses up to the last 5 s.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from shared.local.azurite import start_or_reuse
from tests.dev_process import ROOT, Dev, chatft, folder_env, stage, until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's"),
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    lines = (ROOT / "samples" / "chat_sample.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "small.jsonl").write_bytes(b"".join(lines[:300]))
    return tmp_path


@contextlib.contextmanager
def stored(folder: Path) -> Iterator[tuple[BlobServiceClient, TableServiceClient]]:
    """What dev's Azurite data folder holds now, read by an Azurite of our own on it (no host, no ingest)."""
    azurite = start_or_reuse(location=folder / ".chatft" / "azurite", reuse=False)
    try:
        yield (
            BlobServiceClient.from_connection_string(azurite.connection_string),
            TableServiceClient.from_connection_string(azurite.connection_string),
        )
    finally:
        azurite.stop()


def test_an_acknowledged_upload_and_its_ledger_row_survive_kill_9_of_dev(folder: Path) -> None:
    env = folder_env()
    dev = Dev(folder, env)
    try:
        done = chatft(folder, env, "upload", "small.jsonl")
        assert done.returncode == 0 and "MD5 verified" in done.stdout, done.stdout + done.stderr
        dev.kill9()  # at once: well inside Azurite's 5 s between saves
        with stored(folder) as (blobs, _):
            assert [b.name for b in blobs.get_container_client("chat-uploads").list_blobs()] == ["small.jsonl"]
        dev = Dev(folder, env)
        view = until("a ledger row with its job", lambda: (s := stage(folder, env, "small.jsonl")) and s["job"] and s)
        dev.kill9()
        with stored(folder) as (_, tables):
            rows = list(tables.get_table_client("chatftledger").list_entities())
        assert [(r["RowKey"], r["job_name"]) for r in rows] == [(view["sha256"], view["job"])]
    finally:
        dev.stop()
