"""An upload's history (keep, release, retire with its reason, redeploy) outlives redeploys, in `chatft status
UPLOAD` and in the report: through the real command line and janitor timer, on Azurite and the REAL azure-ai-ml
MLClient over the in-memory Azure ML service (tests/aml_rest.py), as tests/test_endpoint_action_commands.py does."""

from __future__ import annotations

import re

from shared.domain.ledger import Status
from shared.domain.upload_history import HISTORY, MAX_ITEMS, add, items
from tests.deploy_flow import SHA, report, row, run_until
from tests.scoring_server import ScoringServer
from tests.test_endpoint_action_commands import chatft, ctx, live_upload  # noqa: F401  (ctx is a fixture)
from tests.test_janitor import run_timer


def _actions(lines: list[str]) -> list[str]:
    """'2026-12-05T19:40:01 retire ep by chatft retire: demo over' -> 'retire by chatft retire: demo over'."""
    found = (re.match(r"\s*(?:- )?\d{4}-\d\d-\d\dT[\d:]{8} (\w+) \S+ (.*)", line) for line in lines)
    return [f"{m.group(1)} {m.group(2)}" for m in found if m]


def _live_again(service) -> None:
    with ScoringServer(key="k", deployment="demo") as server:
        service.online_endpoints.scoring_uri, service.online_endpoints.key = server.url, "k"
        run_until(lambda: row().status is Status.LIVE)


def test_keep_release_retire_and_redeploy_stay_in_status_and_the_report_across_redeploys(
    ctx,  # noqa: F811
    blob_service,
    storage_env,
) -> None:
    service, _, _, path = ctx
    endpoint = live_upload(service, blob_service, storage_env)
    assert chatft(path, "keep", endpoint).exit_code == 0
    assert chatft(path, "release", endpoint).exit_code == 0
    run_timer()  # the janitor (5 hours ahead) retires the idle endpoint...
    run_timer()  # ...and confirms it gone
    assert row().status is Status.RETIRED
    idle_reason = row().deploy["retired"]["reason"]
    assert chatft(path, "redeploy", SHA[:10]).exit_code == 0  # replaces the row's deployment record
    _live_again(service)
    assert chatft(path, "retire", endpoint, "--reason", "demo over").exit_code == 0
    assert chatft(path, "redeploy", SHA[:10]).exit_code == 0
    _live_again(service)

    expected = [
        "keep by chatft keep",
        "release by chatft release",
        f"retire by the idle-endpoint janitor: {idle_reason}",
        f"redeploy by chatft redeploy: model {row().deploy['model_name']}:{row().deploy['model_version']}",
        "retire by chatft retire: demo over",
        f"redeploy by chatft redeploy: model {row().deploy['model_name']}:{row().deploy['model_version']}",
    ]
    result = chatft(path, "status", SHA[:10])
    assert result.exit_code == 0, result.output
    assert _actions(result.stdout.splitlines()) == expected, result.stdout
    assert report(blob_service, storage_env)["deployment"]["history"]
    prefix = f"{row().key.dataset}/{SHA[:16]}"
    container = blob_service.get_container_client(storage_env["PREPARED_CONTAINER"])
    markdown = container.get_blob_client(f"{prefix}/report.md").download_blob().readall().decode()
    assert "- History:" in markdown
    assert _actions(markdown.split("- History:", 1)[1].splitlines()) == expected


def test_the_history_is_bounded_and_a_broken_column_reads_as_none() -> None:
    """A Table string property holds at most 64 KiB (32K UTF-16 characters): the list keeps the newest items
    (https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model)."""
    from datetime import datetime, timedelta, timezone

    from shared.domain.ledger import LedgerEntry, UploadKey

    start = datetime(2026, 12, 5, tzinfo=timezone.utc)
    entry = LedgerEntry(UploadKey("chats", SHA), Status.LIVE, 1, "claim", start, "etag", "up/chats.jsonl", "cid")
    for i in range(MAX_ITEMS + 5):
        add(entry, "keep", start + timedelta(minutes=i), endpoint="ep", by="chatft keep", detail="x" * 5000)
    add(entry, "keep", start + timedelta(minutes=MAX_ITEMS + 4), endpoint="ep", by="chatft keep")  # the same one
    kept = items(entry)
    assert len(kept) == MAX_ITEMS and kept[-1]["at"] == (start + timedelta(minutes=MAX_ITEMS + 4)).isoformat()
    assert len(entry.extra[HISTORY]) < 32_000
    entry.extra[HISTORY] = "{not json"
    assert items(entry) == []
