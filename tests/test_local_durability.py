"""Nothing `chatft dev` acknowledged is lost when it dies: kill -9 of dev keeps every storage write the user was
told about (its Azurite gets SIGTERM, saves, and exits; the next start waits for that).

The kernel sends a PR_SET_PDEATHSIG signal again each time the child is handed to another thread of its dying
parent (torvalds/linux kernel/exit.c `forget_original_parent` sends `pdeath_signal` per reparenting, and
`find_new_reaper` picks a live thread of the same group first; man 2 prctl: "the signal will be sent when that
thread terminates"), so a multi-threaded dev's death can deliver it two or three times; Node's default action
for a signal with no listener is to exit (https://nodejs.org/api/process.html#signal-events).

Azurite keeps blob and table metadata in LokiJS databases it saves every 5 s and when it closes on SIGTERM or
SIGINT (node_modules/azurite/dist/src/azurite.js: `process.once("SIGTERM", () => shutdown(...))`; each
Loki*MetadataStore is built with `autosave: true, autosaveInterval: 5000`, and lokijs' `Loki.prototype.close`
saves a dirty database). A SIGKILL loses up to the last 5 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
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
def stored_at(location: Path) -> Iterator[BlobServiceClient]:
    with stored(location) as (blobs, _):
        yield blobs


@contextlib.contextmanager
def stored(location: Path) -> Iterator[tuple[BlobServiceClient, TableServiceClient]]:
    """What an Azurite data folder holds now, read by an Azurite of our own on it (no host, no ingest)."""
    azurite = start_or_reuse(location=location, reuse=False)
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
        with stored(folder / ".chatft" / "azurite") as (blobs, _):
            assert [b.name for b in blobs.get_container_client("chat-uploads").list_blobs()] == ["small.jsonl"]
        dev = Dev(folder, env)
        view = until("a ledger row with its job", lambda: (s := stage(folder, env, "small.jsonl")) and s["job"] and s)
        dev.kill9()
        with stored(folder / ".chatft" / "azurite") as (_, tables):
            rows = list(tables.get_table_client("chatftledger").list_entities())
        assert [(r["RowKey"], r["job_name"]) for r in rows] == [(view["sha256"], view["job"])]
    finally:
        dev.stop()


def test_azurite_saves_a_write_however_often_its_parent_death_signal_comes(tmp_path: Path) -> None:
    """SIGTERM every 2 ms until it exits (a dying dev's threads hand it on two or three times, at moments we
    cannot choose): the write it acknowledged is on disk, whichever signal came while it was saving."""
    location = tmp_path / "azurite"
    azurite = start_or_reuse(location=location, reuse=False)
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container("acked").upload_blob(
        "chats.jsonl", b"{}\n" * 1000
    )
    deadline = time.monotonic() + 5
    while azurite.process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(azurite.process.pid, signal.SIGTERM)
        time.sleep(0.002)
    assert azurite.process.poll() is not None
    with stored_at(location) as found:
        assert [b.name for b in found.get_container_client("acked").list_blobs()] == ["chats.jsonl"]
