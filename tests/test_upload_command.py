"""`chatft upload` on Azurite: local validation first, chunked parallel upload with verified checksums,
names that never overwrite, and --follow printing each stage once, in order."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from typer.testing import CliRunner

import shared.entry.app_wiring
from shared.azure.upload import (
    SHA_METADATA,
    ChecksumMismatch,
    UploadContainer,
    candidate_names,
    digest_file,
)
from shared.domain.ledger import Status, UploadKey
from shared.entry.cli.app import app
from tests.chats import jsonl, valid_file

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def target(storage_env, tmp_path, monkeypatch) -> Path:
    return settings_for(storage_env, tmp_path, monkeypatch)


def settings_for(storage_env, tmp_path, monkeypatch) -> Path:
    """A settings file naming this test's Azurite containers and ledger table (never a live `chatft dev`)."""
    values = {**storage_env, "LEDGER_TABLE": f"up{uuid.uuid4().hex[:12]}"}
    monkeypatch.setenv("LEDGER_TABLE", values["LEDGER_TABLE"])
    shared.entry.app_wiring.reset()
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": values}))
    return path


def chats(tmp_path: Path, data: bytes = b"", name: str = "chats.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data or valid_file(30))
    return path


def upload(target: Path, *args: str):
    return runner.invoke(app, ["upload", *args, "--settings", str(target)])


def blobs(blob_service: BlobServiceClient, container: str) -> dict[str, bytes]:
    client = blob_service.get_container_client(container)
    if not client.exists():
        return {}
    return {b.name: client.download_blob(b.name).readall() for b in client.list_blobs()}


def test_upload_puts_the_validated_bytes_with_md5_and_sha256(target, tmp_path, blob_service, storage_env) -> None:
    path = chats(tmp_path)
    result = upload(target, str(path))
    assert result.exit_code == 0, result.output
    assert "blob name: chats.jsonl" in result.stdout and "MD5 verified" in result.stdout
    blob = blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "chats.jsonl")
    props = blob.get_blob_properties()
    data = path.read_bytes()
    assert blob.download_blob().readall() == data
    assert bytes(props.content_settings.content_md5) == hashlib.md5(data).digest()
    assert props.metadata[SHA_METADATA] == hashlib.sha256(data).hexdigest()


def test_a_file_the_validator_rejects_never_reaches_storage(target, tmp_path, blob_service, storage_env) -> None:
    bad = jsonl([{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}] * 6)
    path = chats(tmp_path, bad + b'{"messages": [{"role": "user"}]}\n', name="bad.jsonl")
    result = upload(target, str(path))
    assert result.exit_code == 1
    assert "REJECTED" in result.stdout and "messages[0]" in result.stdout
    assert "nothing was uploaded" in result.stderr
    assert blobs(blob_service, storage_env["UPLOAD_CONTAINER"]) == {}


def test_a_taken_name_gets_a_suffix_and_only_overwrite_replaces(target, tmp_path, blob_service, storage_env) -> None:
    first, second = chats(tmp_path, valid_file(20), "a.jsonl"), chats(tmp_path, valid_file(25, 100), "b.jsonl")
    assert upload(target, str(first), "--name", "team/chats.jsonl").exit_code == 0
    result = upload(target, str(second), "--name", "team/chats.jsonl")
    assert result.exit_code == 0 and "blob name: team/chats-2.jsonl" in result.stdout
    assert "team/chats.jsonl is taken" in result.stdout
    stored = blobs(blob_service, storage_env["UPLOAD_CONTAINER"])
    assert stored == {"team/chats.jsonl": first.read_bytes(), "team/chats-2.jsonl": second.read_bytes()}
    third = chats(tmp_path, valid_file(22, 200), "c.jsonl")
    result = upload(target, str(third), "--name", "team/chats.jsonl", "--overwrite")
    assert result.exit_code == 0 and "replaced" in result.stdout
    assert blobs(blob_service, storage_env["UPLOAD_CONTAINER"])["team/chats.jsonl"] == third.read_bytes()
    # bytes another name holds are not stored twice, --overwrite or not
    again = upload(target, str(second), "--name", "team/chats.jsonl", "--overwrite")
    assert again.exit_code == 0 and "already uploaded as team/chats-2.jsonl" in again.stdout
    assert blobs(blob_service, storage_env["UPLOAD_CONTAINER"])["team/chats.jsonl"] == third.read_bytes()


def test_the_same_bytes_again_are_not_uploaded_twice(target, tmp_path, blob_service, storage_env) -> None:
    """Was: a second `chatft upload` of the same file got a -2 suffix, a new dataset name, and so a second
    fine-tuning job on the same data. Same bytes = the same upload; --overwrite is how to retry it."""
    path = chats(tmp_path)
    assert upload(target, str(path)).exit_code == 0
    again = upload(target, str(path), "--name", "another-name.jsonl")
    assert again.exit_code == 0, again.output
    assert "already uploaded as chats.jsonl" in again.stdout and "--overwrite" in again.stdout
    assert list(blobs(blob_service, storage_env["UPLOAD_CONTAINER"])) == ["chats.jsonl"]
    retry = upload(target, str(path), "--overwrite")
    assert retry.exit_code == 0 and "replaced" in retry.stdout


_AT_ONCE = """
import sys, time
from pathlib import Path
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
sys.argv = ["chatft", *sys.argv[3:]]
import azure.storage.blob, rich.progress, shared.entry.cli.app, shared.entry.cli.commands.upload, shared.azure.upload
ready.touch()
while not go.exists():
    time.sleep(0.002)
shared.entry.cli.app.main()
"""


def uploads_at_once(target: Path, path: Path, names: list[str]) -> list[subprocess.CompletedProcess]:
    """`chatft upload` in one process per name, each released by the same go-file once all have loaded."""
    folder = path.parent / f"at-once-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    go = folder / "go"
    command = ["upload", str(path), "--settings", str(target)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _AT_ONCE, str(folder / f"ready-{i}"), str(go), *command, "--name", name],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, name in enumerate(names)
    ]
    deadline = time.monotonic() + 25
    while len(list(folder.glob("ready-*"))) < len(names) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    done = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=30)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return done


@pytest.mark.slow
def test_five_uploads_of_one_file_at_once_store_it_once(target, tmp_path, blob_service, storage_env) -> None:
    """Was: five `chatft upload` of one file under five names at the same moment each found no blob with its
    SHA-256 and uploaded (5 blobs, 5 datasets, 5 jobs). The bytes are claimed by their SHA-256 before any
    blob is written (a blob created with If-None-Match: *, which the SDK sends for overwrite=False:
    azure/storage/blob/_upload_helpers.py upload_block_blob; a second create fails with 409 BlobAlreadyExists,
    ResourceExistsError: https://learn.microsoft.com/rest/api/storageservices/specifying-conditional-headers-for-blob-service-operations),
    so one upload stores them and the other four say which blob holds them, writing nothing."""
    path = chats(tmp_path, valid_file(300))
    names = [f"copy-{i}.jsonl" for i in range(5)]
    done = uploads_at_once(target, path, names)
    stored = blobs(blob_service, storage_env["UPLOAD_CONTAINER"])
    assert list(stored.values()) == [path.read_bytes()], [r.stdout + r.stderr for r in done]
    [first] = stored
    [winner] = [r for r in done if f"blob name: {first}" in r.stdout]
    assert winner.returncode == 0
    for other in (r for r in done if r is not winner):
        said = other.stdout + other.stderr
        assert "Traceback" not in said and f"as {first}" in said and "uploaded again" in said, said
    uncommitted = blob_service.get_container_client(storage_env["UPLOAD_CONTAINER"]).list_blobs(
        include=["uncommittedblobs"]
    )
    assert [b.name for b in uncommitted] == [first]


def claims_for(storage_env):
    from shared.azure.content_claims import BlobContentClaims
    from shared.azure.storage import blob_service

    return BlobContentClaims(blob_service(), storage_env["PREPARED_CONTAINER"], storage_env["UPLOAD_CONTAINER"])


def test_a_claim_left_by_a_dead_upload_lapses(target, tmp_path, blob_service, storage_env) -> None:
    """A `chatft upload` killed mid-upload leaves its claim on the bytes (never its blob: the block list is
    committed last). While the claim is fresh another upload of the bytes is refused, naming it, and stores
    nothing; once it shows no progress for STALE_AFTER it holds nothing and the next upload goes ahead."""
    from shared.domain.content_claim import STALE_AFTER

    path = chats(tmp_path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    claims = claims_for(storage_env)
    dead = claims.claim(sha, "killed.jsonl", by="chatft upload", now=datetime.now(timezone.utc)).claim
    refused = upload(target, str(path))
    assert refused.exit_code == 1, refused.output
    assert "being uploaded as killed.jsonl" in refused.stderr and "Traceback" not in refused.output
    assert blobs(blob_service, storage_env["UPLOAD_CONTAINER"]) == {}
    long_ago = datetime.now(timezone.utc) - STALE_AFTER - timedelta(seconds=1)
    claims.update(dead, lambda c: c.__class__(**{**c.__dict__, "claimed_at": long_ago, "updated_at": long_ago}))
    done = upload(target, str(path))
    assert done.exit_code == 0 and "blob name: chats.jsonl" in done.stdout, done.output
    assert list(blobs(blob_service, storage_env["UPLOAD_CONTAINER"])) == ["chats.jsonl"]
    held = claims.claim(sha, "other.jsonl", by="chatft upload", now=datetime.now(timezone.utc))
    assert not held.acquired and held.uploaded and held.claim.blob == "chats.jsonl"


def test_an_upload_that_fails_lets_go_of_its_bytes(tmp_path, azurite, storage_env) -> None:
    """A file edited mid-upload is deleted again (ChecksumMismatch); its claim goes with it, so the next upload
    of the validated bytes is not refused for ten minutes."""
    from shared.azure.content_claims import HeldClaim

    service = BlobServiceClient.from_connection_string(
        azurite.connection_string, max_block_size=16 << 10, max_single_put_size=16 << 10
    )
    path = chats(tmp_path, valid_file(300))
    with path.open("rb") as f:
        validated = digest_file(f)
    path.write_bytes(path.read_bytes().replace(b"Answer", b"Antwort"))
    claims = claims_for(storage_env)
    now = datetime.now(timezone.utc)
    held = HeldClaim(claims, claims.claim(validated.sha256, "chats.jsonl", by="chatft upload", now=now).claim)
    store = UploadContainer(service, storage_env["UPLOAD_CONTAINER"], storage_env["PREPARED_CONTAINER"])
    with pytest.raises(ChecksumMismatch):
        store.upload_file(path, "chats.jsonl", validated, claim=held)
    assert claims.claim(validated.sha256, "again.jsonl", by="chatft upload", now=now).acquired


def test_an_upload_whose_claim_was_taken_over_stops_before_committing(
    tmp_path, azurite, storage_env, monkeypatch
) -> None:
    """An upload stalled past STALE_AFTER may lose its claim to another; its next heartbeat (from the SDK's
    progress hook, which runs after each staged block: azure/storage/blob/_shared/uploads.py
    _ChunkUploader.update_progress; an exception there is re-raised by the executor's future.result() in
    upload_data_chunks, before commit_block_list) stops it, so the bytes are never stored twice."""
    import shared.azure.content_claims as content_claims
    from shared.azure.content_claims import HeldClaim
    from shared.azure.upload import UploadError
    from shared.domain.content_claim import STALE_AFTER

    monkeypatch.setattr(content_claims, "HEARTBEAT", timedelta(0))
    service = BlobServiceClient.from_connection_string(
        azurite.connection_string, max_block_size=16 << 10, max_single_put_size=16 << 10
    )
    path = chats(tmp_path, valid_file(300))
    with path.open("rb") as f:
        digest = digest_file(f)
    claims = claims_for(storage_env)
    now = datetime.now(timezone.utc)
    held = HeldClaim(claims, claims.claim(digest.sha256, "chats.jsonl", by="chatft upload", now=now).claim)
    later = now + STALE_AFTER + timedelta(minutes=1)
    taken: list[bool] = []

    def another_upload_takes_over(current: int, total: int | None) -> None:
        if not taken:
            taken.append(claims.claim(digest.sha256, "theirs.jsonl", by="chatft upload", now=later).acquired)

    store = UploadContainer(service, storage_env["UPLOAD_CONTAINER"], storage_env["PREPARED_CONTAINER"])
    with pytest.raises(UploadError, match="another upload took over these bytes"):
        store.upload_file(
            path, "chats.jsonl", digest, progress=another_upload_takes_over, max_concurrency=1, claim=held
        )
    assert taken == [True]
    assert blobs(service, storage_env["UPLOAD_CONTAINER"]) == {}
    holder = claims.claim(digest.sha256, "x.jsonl", by="chatft upload", now=later)
    assert holder.claim.blob == "theirs.jsonl", "the claim that won is left alone"


def test_an_upload_is_trained_once_and_a_copy_under_another_name_points_at_it(
    aml, tmp_path, blob_service, storage_env
) -> None:
    """`chatft upload` claims the bytes for its blob name, so its own trigger submits; the same bytes put under
    another name by hand (az storage blob upload) are reported as a copy of it, not trained."""
    import function_app
    from tests.hosting import invoke_blob_trigger

    workspace, _ = aml
    settings = tmp_path / "local.settings.json"
    values = {**storage_env, "LEDGER_TABLE": os.environ["LEDGER_TABLE"]}
    settings.write_text(json.dumps({"Values": values}))
    path = chats(tmp_path)
    assert upload(settings, str(path)).exit_code == 0
    invoke_blob_trigger(function_app.app, "ingest_upload", "chats.jsonl")
    [call] = workspace.jobs.created
    assert call["tags"]["chatft_source"].endswith("/chats.jsonl")
    blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "by-hand.jsonl").upload_blob(path.read_bytes())
    outcome = invoke_blob_trigger(function_app.app, "ingest_upload", "by-hand.jsonl")
    assert outcome is None and len(workspace.jobs.created) == 1
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    report = blob_service.get_blob_client(storage_env["PREPARED_CONTAINER"], f"by-hand/{sha[:16]}/report.json")
    submission = json.loads(report.download_blob().readall())["submission"]
    assert submission["status"] == "not submitted"
    assert submission["duplicate_of"] == f"{storage_env['UPLOAD_CONTAINER']}/chats.jsonl"


def test_a_name_taken_during_the_upload_is_never_overwritten(tmp_path, blob_service, storage_env, monkeypatch) -> None:
    """The race: the name looked free, then another writer created it. overwrite=False makes the SDK send
    If-None-Match: * (azure/storage/blob/_upload_helpers.py upload_block_blob), so ours fails and moves on."""
    from azure.storage.blob import BlobClient

    container = storage_env["UPLOAD_CONTAINER"]
    blob_service.create_container(container)
    blob_service.get_blob_client(container, "chats.jsonl").upload_blob(b"theirs")
    monkeypatch.setattr(BlobClient, "exists", lambda self, **kw: False)
    path = chats(tmp_path)
    with path.open("rb") as f:
        digest = digest_file(f)
    store = UploadContainer(blob_service, container, storage_env["PREPARED_CONTAINER"])
    done = store.upload_file(path, "chats.jsonl", digest)
    assert done.name == "chats-2.jsonl" and done.skipped == ("chats.jsonl",)
    assert blobs(blob_service, container) == {"chats.jsonl": b"theirs", "chats-2.jsonl": path.read_bytes()}


def test_chunked_parallel_upload_keeps_the_whole_file_md5(tmp_path, azurite, storage_env) -> None:
    """Above max_single_put_size the SDK stages blocks (in parallel) and commits a block list; the service
    checks each block's transactional MD5 (validate_content=True: _shared/policies.py
    _prepare_content_validation) but not the whole blob, so the stored Content-MD5 is the one we set."""
    service = BlobServiceClient.from_connection_string(
        azurite.connection_string, max_block_size=64 << 10, max_single_put_size=64 << 10
    )
    path = chats(tmp_path, valid_file(2000))
    with path.open("rb") as f:
        digest = digest_file(f)
    assert digest.size > 8 * (64 << 10)
    seen: list[int] = []
    store = UploadContainer(service, storage_env["UPLOAD_CONTAINER"], storage_env["PREPARED_CONTAINER"])
    done = store.upload_file(path, "big.jsonl", digest, progress=lambda cur, total: seen.append(cur), max_concurrency=4)
    blob = service.get_blob_client(storage_env["UPLOAD_CONTAINER"], done.name)
    committed, _ = blob.get_block_list("committed")
    assert len(committed) >= 8
    assert bytes(blob.get_blob_properties().content_settings.content_md5) == hashlib.md5(path.read_bytes()).digest()
    assert blob.download_blob().readall() == path.read_bytes()
    assert seen and max(seen) == digest.size


@pytest.mark.parametrize("block", [8 << 20, 16 << 10])
def test_bytes_that_changed_after_validation_are_never_kept(tmp_path, azurite, storage_env, block) -> None:
    """One put: the service checks the whole body against the Content-MD5 we set (Md5Mismatch, nothing
    stored). Blocks: it does not (Put Block List), so our hash of what the SDK read catches it and the
    committed blob is deleted."""
    service = BlobServiceClient.from_connection_string(
        azurite.connection_string, max_block_size=block, max_single_put_size=block
    )
    path = chats(tmp_path, valid_file(300))
    with path.open("rb") as f:
        validated = digest_file(f)
    path.write_bytes(path.read_bytes().replace(b"Answer", b"Antwort"))  # edited between validation and upload
    store = UploadContainer(service, storage_env["UPLOAD_CONTAINER"], storage_env["PREPARED_CONTAINER"])
    with pytest.raises(ChecksumMismatch, match="changed while it was being uploaded"):
        store.upload_file(path, "chats.jsonl", validated)
    assert blobs(service, storage_env["UPLOAD_CONTAINER"]) == {}


def test_candidate_names_keep_folder_and_extension() -> None:
    names = candidate_names("a b/Chats.JSONL", limit=3)
    assert list(names) == ["a b/Chats.JSONL", "a b/Chats-2.JSONL", "a b/Chats-3.JSONL"]


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_bad_paths_are_one_line_exit_2(target, tmp_path, kind) -> None:
    path = tmp_path / "nope.jsonl" if kind == "missing" else tmp_path
    result = upload(target, str(path))
    assert (result.exit_code == 2 and result.exception is None) or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert ("cannot read" if kind == "missing" else "is a folder") in result.stderr


def test_unreachable_storage_is_one_line_exit_2(tmp_path) -> None:
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"Values": {"CHATFT_STORAGE": dead, "ML_BACKEND": "none"}}))
    began = time.monotonic()
    result = runner.invoke(app, ["upload", str(chats(tmp_path)), "--settings", str(settings)])
    assert result.exit_code == 2 and "storage:" in result.stderr and "Traceback" not in result.output
    assert time.monotonic() - began < 30
    bad = runner.invoke(app, ["upload", str(chats(tmp_path)), "--settings", str(tmp_path / "absent.json")])
    assert bad.exit_code == 2 and "not a readable local.settings.json" in bad.stderr


# --- --follow: the test plays the ingest function, the job event and the reconciler ---


def _play_the_backend(storage_env, fail_at: str | None, stop: threading.Event, training=None) -> None:
    """Wait for the upload, then move its ledger row and report through every stage; `training(job)` plays the
    job's tracking store while it trains."""
    from shared.azure.storage import BlobPreparedStore, blob_service
    from shared.domain.naming import dataset_name, dataset_prefix

    service = blob_service(storage_env)
    container = service.get_container_client(storage_env["UPLOAD_CONTAINER"])
    while not stop.is_set():
        found = [b for b in container.list_blobs(include=["metadata"])] if container.exists() else []
        if found:
            break
        time.sleep(0.05)
    else:
        return
    blob = found[0]
    sha, dataset = blob.metadata[SHA_METADATA], dataset_name(blob.name)
    prefix, key = dataset_prefix(dataset, sha), UploadKey(dataset, sha)
    store = BlobPreparedStore(service, storage_env["PREPARED_CONTAINER"])
    report = {"source": f"{container.container_name}/{blob.name}", "sha256": sha, "valid": True, "conversations": 30}
    report |= {"splits": {"train": 27, "validation": 1, "test": 2}, "error_totals": {}, "warning_totals": {}}
    report["submission"] = {"status": "submitting"}  # as ingest writes it before submitting
    ledger, now = shared.entry.app_wiring.ledger(), datetime.now(timezone.utc)

    def pause() -> None:
        time.sleep(0.25)

    store.put_bytes(f"{prefix}/report.json", json.dumps(report).encode(), "application/json")
    pause()
    ledger.claim(key, upload_etag=blob.etag, source=report["source"], cid=sha[:12], now=now, stale_after=timedelta(1))
    pause()
    entry = ledger.get(key)
    entry.status, entry.job_name, entry.updated_at = Status.SUBMITTED, "chatft-chats-job-a1", now
    ledger.save(entry)
    report["submission"] = {"status": "submitted", "studio_url": "https://ml.azure.com/runs/chatft-chats-job-a1"}
    store.put_bytes(f"{prefix}/report.json", json.dumps(report).encode(), "application/json")
    pause()
    if training is not None:
        training(entry.job_name)
    if fail_at == "job":
        entry.status, entry.error = Status.FAILED, "the fine-tuning job was failed"
        ledger.save(entry)
        return
    entry.status = Status.REGISTERED
    entry.deploy = {"model_name": "Phi-4-chatft", "model_version": "7", "endpoint": "cft-chats-1", "step": "check_sku"}
    ledger.save(entry)
    pause()
    for step in ("create_endpoint", "wait_deployment"):
        entry.status, entry.deploy["step"], entry.deploy["updated_at"] = Status.DEPLOYING, step, now.isoformat()
        ledger.save(entry)
        pause()
    if fail_at == "deploy":
        entry.status, entry.deploy["step"], entry.error = Status.DEPLOY_FAILED, "deleted", "not live by the deadline"
        ledger.save(entry)
        return
    entry.status, entry.deploy["step"] = Status.LIVE, "live"
    entry.deploy |= {"scoring_uri": "http://127.0.0.1:5/score", "live_at": now.isoformat(), "smoke": {"latency_ms": 9}}
    ledger.save(entry)


def follow(target, tmp_path, storage_env, fail_at: str | None = None, *extra: str, training=None):
    stop = threading.Event()
    backend = threading.Thread(target=_play_the_backend, args=(storage_env, fail_at, stop, training), daemon=True)
    backend.start()
    try:
        return upload(target, str(chats(tmp_path)), "--follow", "--interval", "0.1", "--timeout", "30s", *extra)
    finally:
        stop.set()
        backend.join(10)


def stage_lines(output: str) -> list[str]:
    return [line.split()[1] for line in output.splitlines() if line[:1] in ("✓", "✗")]


def test_follow_prints_every_stage_once_in_order_until_live(target, tmp_path, storage_env) -> None:
    result = follow(target, tmp_path, storage_env)
    assert result.exit_code == 0, result.output
    assert stage_lines(result.stdout) == [
        "checked",
        "uploaded",
        "validated",
        "submitted",
        "training",
        "registered",
        "deploying",
        "live",
    ]
    assert "https://ml.azure.com/runs/chatft-chats-job-a1" in result.stdout
    assert "model Phi-4-chatft:7" in result.stdout and "http://127.0.0.1:5/score" in result.stdout
    assert "step wait_deployment" in result.stdout


@pytest.mark.parametrize(("fail_at", "last"), [("job", "failed"), ("deploy", "deploy_failed")])
def test_follow_exits_1_on_a_failure_with_the_reason(target, tmp_path, storage_env, fail_at, last) -> None:
    result = follow(target, tmp_path, storage_env, fail_at)
    assert result.exit_code == 1, result.output
    assert stage_lines(result.stdout)[-1] == last
    assert ("the fine-tuning job was failed" if fail_at == "job" else "not live by the deadline") in result.stdout


def test_follow_a_rejected_upload_prints_the_report_path(target, tmp_path, storage_env) -> None:
    import function_app
    from tests.hosting import invoke_blob_trigger

    path = chats(tmp_path, b'{"messages": 5}\n')
    stop = threading.Event()

    def ingest() -> None:
        service = BlobServiceClient.from_connection_string(storage_env["CHATFT_STORAGE"])
        container = service.get_container_client(storage_env["UPLOAD_CONTAINER"])
        while not stop.is_set() and not (container.exists() and list(container.list_blobs())):
            time.sleep(0.05)
        if not stop.is_set():
            invoke_blob_trigger(function_app.app, "ingest_upload", "chats.jsonl")

    worker = threading.Thread(target=ingest, daemon=True)
    worker.start()
    try:
        result = upload(target, str(path), "--no-validate", "--follow", "--interval", "0.1", "--timeout", "30s")
    finally:
        stop.set()
        worker.join(10)
    assert result.exit_code == 1, result.output
    assert stage_lines(result.stdout) == ["uploaded", "rejected"]
    assert f"report {storage_env['PREPARED_CONTAINER']}/chats/" in result.stdout and "report.md" in result.stdout


def test_follow_times_out_with_exit_2(target, tmp_path) -> None:
    result = upload(target, str(chats(tmp_path)), "--follow", "--interval", "0.1", "--timeout", "0.3")
    assert result.exit_code == 2
    assert "timed out" in result.stderr and "chatft status chats.jsonl" in result.stderr


def test_follow_says_once_what_to_check_when_nothing_happens_to_the_upload(target, tmp_path, monkeypatch) -> None:
    """No blob trigger runs here, so the upload sits at `uploaded` (shared.domain.upload_stage.stalled_hint)."""
    import shared.domain.upload_stage as upload_stage

    monkeypatch.setattr(upload_stage, "STALLED_AFTER_SECONDS", 0.0)
    result = upload(target, str(chats(tmp_path)), "--follow", "--interval", "0.1", "--timeout", "0.6")
    assert result.exit_code == 2
    assert result.stderr.count("no ingest result after ") == 1 and "`chatft doctor`" in result.stderr


def test_md5_metadata_is_base64_in_the_service(target, tmp_path, blob_service, storage_env) -> None:
    """What the portal shows as Content-MD5 is the file's MD5 (base64), so anyone can check it with openssl."""
    path = chats(tmp_path)
    assert upload(target, str(path)).exit_code == 0
    props = blob_service.get_blob_client(storage_env["UPLOAD_CONTAINER"], "chats.jsonl").get_blob_properties()
    assert base64.b64encode(bytes(props.content_settings.content_md5)) == base64.b64encode(
        hashlib.md5(path.read_bytes()).digest()
    )
