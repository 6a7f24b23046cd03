"""One malformed ledger row stops nothing: garbage rows (the issue's six and more) written with the real
azure-data-tables client beside a healthy upload; the reconciler deploys the healthy one, the janitor runs, `chatft
status` lists each bad row as unreadable on one line, `keep` and `release` of the healthy endpoint work, and the log
names each bad row by its keys."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from shared.azure.table_ledger import table_client
from shared.domain.ledger import Status
from tests.deploy_flow import completed, row, run_until, send, submit
from tests.scoring_server import ScoringServer
from tests.test_endpoint_action_commands import chatft, ctx  # noqa: F401  (ctx: the fixture)
from tests.test_janitor import run_timer
from tests.test_ledger_rows import GARBAGE


def write_rows(table: str, rows: list[dict[str, Any]]) -> None:
    client = table_client(table)
    for entity in rows:
        client.upsert_entity(entity)


def test_garbage_rows_beside_a_healthy_upload_stop_no_tick_status_or_keep(
    ctx,  # noqa: F811
    blob_service,
    storage_env,
    caplog,
) -> None:
    service, _, _, path = ctx
    caplog.set_level(logging.ERROR, logger="chatft")
    job, tags = submit(blob_service, storage_env, service)
    send(completed(job, tags))  # the healthy upload is registered; the reconciler deploys it below
    write_rows(os.environ["LEDGER_TABLE"], list(GARBAGE.values()))

    with ScoringServer(key="k", deployment="demo") as server:
        service.online_endpoints.scoring_uri, service.online_endpoints.key = server.url, "k"
        run_until(lambda: row().status is Status.LIVE)
    endpoint = row().deploy["endpoint"]

    result = chatft(path, "status", "--json")
    assert result.exit_code == 0, result.output
    docs = json.loads(result.stdout)
    assert [d["stage"] for d in docs if d["name"] == "chats.jsonl"] == ["live"]
    unreadable = {d["sha256"]: d for d in docs if d["stage"] == "unreadable"}
    assert set(unreadable) == {e["RowKey"] for e in GARBAGE.values()}
    assert "attempt" in unreadable[GARBAGE["attempt-abc"]["RowKey"]]["error"]
    assert "claimed_at" in unreadable[GARBAGE["naive-time"]["RowKey"]]["error"]
    table = chatft(path, "status")
    assert table.exit_code == 0, table.output
    lines = [line for line in table.stdout.splitlines() if "unreadable" in line]
    assert len(lines) == len(GARBAGE), table.stdout  # one line each
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name == "chatft"]
    for name, entity in GARBAGE.items():  # the app's loops, or status (rows whose status no loop lists)
        about = [m for m in logged if entity["RowKey"] in m]
        assert about, f"no ERROR log names the bad row {name}"
        assert all('"PartitionKey":"chats"' in m and "unreadable_row" in m for m in about), about
    assert not [m for m in logged if "unreadable_row" not in m], "no other error: nothing failed on a bad row"

    kept = chatft(path, "keep", endpoint)
    assert kept.exit_code == 0, kept.output
    assert "is kept" in kept.stdout and "settings:" not in kept.output
    run_timer()  # the janitor lists every row too
    released = chatft(path, "release", "chats.jsonl")
    assert released.exit_code == 0, released.output
    assert row().status is Status.LIVE and "kept" not in row().deploy
