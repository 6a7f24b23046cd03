"""Following an upload that already went live prints its past (issue 21, item 6): each stage with the time the
ledger recorded for it, and a training that ended as ended, not "running" and "(0s)"."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import shared.entry.app_wiring
from shared.domain.ledger import Status, UploadKey
from shared.domain.spend import JOB_ENDED, JOB_STARTED
from tests.test_upload_command import chats, settings_for, upload


def test_following_a_finished_upload_prints_its_stages_with_their_real_times(storage_env, tmp_path, monkeypatch):
    target = settings_for(storage_env, tmp_path, monkeypatch)
    path = chats(tmp_path)
    assert upload(target, str(path)).exit_code == 0
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    ledger, now = shared.entry.app_wiring.ledger(), datetime.now(timezone.utc)
    began, ended, live = (
        now + timedelta(seconds=20),
        now + timedelta(minutes=12, seconds=20),
        now + timedelta(minutes=15),
    )
    key = UploadKey("chats", sha)
    ledger.claim(key, upload_etag="", source="up/chats.jsonl", cid=sha[:12], now=now, stale_after=timedelta(1))
    entry = ledger.get(key)
    entry.status, entry.job_name = Status.LIVE, "chatft-chats-abc-a1"
    entry.extra |= {JOB_STARTED: began.isoformat(), JOB_ENDED: ended.isoformat()}
    entry.deploy = {"model_name": "Phi-4-chats", "model_version": "1", "endpoint": "cft-chats-xyz", "step": "live"}
    entry.deploy |= {"started_at": ended.isoformat(), "live_at": live.isoformat(), "scoring_uri": "http://x/score"}
    assert ledger.save(entry)

    result = upload(target, str(path), "--follow", "--interval", "0.1", "--timeout", "20s")
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line[:1] in "✓✗"}

    def clock(at: datetime) -> str:
        return at.astimezone().strftime("%H:%M:%S")

    assert "job chatft-chats-abc-a1 ended in 12m" in lines["training"] and "running" not in lines["training"]
    assert f"({clock(began)}, " in lines["training"] and "after upload)" in lines["training"]
    assert f"({clock(ended)}, " in lines["registered"]
    assert f"({clock(live)}, " in lines["live"]
    assert "(0s)" not in result.stdout
