"""`chatft keep | release | retire | redeploy`: through the real command line, on Azurite and the REAL
azure-ai-ml MLClient over the in-memory Azure ML service (tests/aml_rest.py), and the local backend from a
second process.

Tags are changed with the ARM PATCH (Online Endpoints - Update), never a PUT of the whole endpoint: the
public `OnlineEndpointOperations` has no update (azure/ai/ml/operations/_online_endpoint_operations.py: only
`begin_create_or_update`, a PUT whose traffic must first go through `_strip_zeroes_from_traffic`), while the
generated client's `online_endpoints.begin_update` sends a `PartialMinimalTrackedResourceWithIdentity`
(`tags`, `identity` only), started with `polling=False` so no LROPoller thread is left (shared/azure/azureml/
lro.py, `start_endpoint_tags_patch`; the `aml` fixture fails a test that leaves one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.ai.ml.entities import Workspace
from typer.testing import CliRunner

import shared.entry.app_wiring
from shared.domain.ledger import Status
from shared.entry.cli.app import app
from shared.flows.janitor import JanitorContext
from tests.deploy_flow import SHA, completed, report, row, run_until, send, submit
from tests.fake_monitor import FakeMetricsClient
from tests.scoring_server import ScoringServer
from tests.test_janitor import OURS, add, deleted, run_timer

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
SETTINGS_KEYS = (
    "CHATFT_STORAGE",
    "UPLOAD_CONTAINER",
    "PREPARED_CONTAINER",
    "ML_BACKEND",
    "AML_SUBSCRIPTION_ID",
    "AML_RESOURCE_GROUP",
    "AML_WORKSPACE",
    "LEDGER_TABLE",
    "SUBMIT_CLAIM_TIMEOUT_SECONDS",
)


class Pinned:
    """A shared.entry.app_wiring factory replaced for the test that survives `shared.entry.app_wiring.reset()` (which the
    commands call when they apply their target's settings)."""

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make

    def __call__(self) -> object:
        return self.make()

    def cache_clear(self) -> None:
        pass


@pytest.fixture
def ctx(aml, tmp_path, monkeypatch):
    """(service, metrics, later, settings file): the janitor with a fake Azure Monitor and a clock 5 hours
    ahead, and a local.settings.json with this test's settings for `--settings` (so no session file or
    local.settings.json of the developer's is ever read)."""
    service, _ = aml
    service.workspaces = type(
        "Workspaces", (), {"get": staticmethod(lambda name=None: Workspace(name=name, location="westeurope"))}
    )()
    adapter = shared.entry.app_wiring.workspace()
    monkeypatch.setattr(shared.entry.app_wiring, "workspace", Pinned(lambda: adapter))
    metrics = FakeMetricsClient()
    later = datetime.now(timezone.utc) + timedelta(hours=5)
    from shared.azure.metrics import AzureMonitorUsage

    def janitor() -> JanitorContext:
        ws = shared.entry.app_wiring.workspace()
        usage = AzureMonitorUsage(region=ws.location, credential_factory=object, client_factory=metrics.factory)
        return JanitorContext(
            shared.entry.app_wiring.settings(),
            ws,
            usage,
            shared.entry.app_wiring.ledger(),
            shared.entry.app_wiring.prepared_store(),
            now=lambda: later,
        )

    monkeypatch.setattr(shared.entry.app_wiring, "janitor_context", Pinned(janitor))
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {k: os.environ[k] for k in SETTINGS_KEYS if k in os.environ}}))
    return service, metrics, later, path


def chatft(path: Path, *args: str):
    return runner.invoke(app, [*args, "--settings", str(path)])


def live_upload(service, blob_service, storage_env) -> str:
    with ScoringServer(key="k", deployment="demo") as server:
        service.online_endpoints.scoring_uri, service.online_endpoints.key = server.url, "k"
        job, tags = submit(blob_service, storage_env, service)
        send(completed(job, tags))
        run_until(lambda: row().status is Status.LIVE)
    return row().deploy["endpoint"]


def patches(service) -> list:
    return service.calls_to("PATCH", r"/onlineEndpoints/")


def test_keep_then_the_janitor_leaves_an_idle_endpoint_alone_release_then_it_goes(
    ctx, blob_service, storage_env
) -> None:
    service, _, _, path = ctx
    endpoint = live_upload(service, blob_service, storage_env)
    traffic = dict(service.online_endpoints.endpoints[endpoint].traffic)
    puts = len(service.calls_to("PUT", rf"/onlineEndpoints/{endpoint}$"))
    result = chatft(path, "keep", endpoint)
    assert result.exit_code == 0, result.output
    assert "is kept" in result.stdout
    [patch] = patches(service)
    assert set(patch.body) == {"tags"}, "a PATCH of the tags alone: traffic cannot be touched"
    assert len(service.calls_to("PUT", rf"/onlineEndpoints/{endpoint}$")) == puts, "never a PUT of the endpoint"
    assert service.online_endpoints.endpoints[endpoint].tags["chatft_keep"] == "true"
    assert service.online_endpoints.endpoints[endpoint].traffic == traffic
    assert row().deploy["kept"]["by"] == "chatft keep"
    run_timer()
    assert deleted(service) == [] and row().status is Status.LIVE

    assert chatft(path, "keep", endpoint).exit_code == 0  # again: nothing to do, nothing sent
    assert len(patches(service)) == 1

    result = chatft(path, "release", "chats.jsonl")  # the blob name names the same upload
    assert result.exit_code == 0, result.output
    assert "chatft_keep" not in {k.lower() for k in service.online_endpoints.endpoints[endpoint].tags}
    assert "kept" not in row().deploy
    run_timer()
    assert deleted(service) == [endpoint] and row().status is Status.RETIRING


@pytest.mark.parametrize(
    ("tags", "command", "sent", "left"),
    [
        ({"Chatft_Keep": "TRUE"}, "keep", False, {"Chatft_Keep": "TRUE"}),
        ({"CHATFT_KEEP": "yes"}, "keep", False, {"CHATFT_KEEP": "yes"}),
        ({"CHATFT_KEEP": "false"}, "keep", True, {"chatft_keep": "true"}),
        ({"Chatft_Keep": "Yes"}, "release", True, {}),
        ({"chatft_KEEP": "no"}, "release", True, {}),
        ({}, "release", False, {}),
    ],
    ids=["kept-odd-case", "kept-yes", "false-becomes-true", "release-odd-case", "release-no", "release-nothing"],
)
def test_keep_and_release_read_the_tag_in_any_case(ctx, tags, command, sent, left) -> None:
    """Azure tag names are case-insensitive: one spelling of the keep tag, never two side by side."""
    service, _, later, path = ctx
    add(service, "ep-orphan", {**OURS, "team": "x", **tags}, later - timedelta(hours=3))
    result = chatft(path, command, "ep-orphan")
    assert result.exit_code == 0, result.output
    assert bool(patches(service)) is sent
    kept = {k: v for k, v in service.online_endpoints.endpoints["ep-orphan"].tags.items() if k.lower() == "chatft_keep"}
    assert kept == left
    assert service.online_endpoints.endpoints["ep-orphan"].tags["team"] == "x"
    if not sent:
        assert "nothing" in result.stdout or "already kept" in result.stdout


def test_retire_then_redeploy_ends_live_again_without_a_new_training_job(ctx, blob_service, storage_env) -> None:
    service, _, _, path = ctx
    endpoint = live_upload(service, blob_service, storage_env)
    model = row().deploy["model_id"]
    result = chatft(path, "retire", endpoint, "--reason", "demo over")
    assert result.exit_code == 0, result.output
    assert endpoint in deleted(service)
    entry = row()
    assert entry.status is Status.RETIRED, "the in-memory service deletes at once: confirmed gone"
    assert entry.deploy["retired"]["by"] == "chatft retire"
    section = report(blob_service, storage_env)["deployment"]
    assert section["status"] == "retired" and "retired by chatft retire: demo over" in section["retired"]

    assert chatft(path, "retire", endpoint).exit_code == 0  # already retired: nothing to do
    result = chatft(path, "redeploy", SHA[:10])
    assert result.exit_code == 0, result.output
    assert "without retraining" in result.stdout and "deploy_reconciler" in result.stdout
    assert row().status is Status.REGISTERED and row().deploy["step"] == "check_sku"
    assert row().deploy["redeployed_after"]["by"] == "chatft retire"
    with ScoringServer(key="k", deployment="demo") as server:
        service.online_endpoints.scoring_uri, service.online_endpoints.key = server.url, "k"
        run_until(lambda: row().status is Status.LIVE)
    assert len(service.jobs.created) == 1, "no second training job"
    assert row().deploy["model_id"] == model and row().deploy["endpoint"] == endpoint

    result = chatft(path, "redeploy", endpoint)
    assert result.exit_code == 0 and "nothing to do" in result.stdout


def test_retire_refuses_what_is_not_ours_and_a_kept_endpoint_without_force(ctx) -> None:
    service, _, later, path = ctx
    add(service, "someone-elses", {"team": "x"}, later - timedelta(hours=6))
    add(service, "kept-one", {**OURS, "Chatft_Keep": "true"}, later - timedelta(hours=6))
    for name in ("someone-elses", "kept-one"):
        result = chatft(path, "retire", name)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
    assert "not created by chatft" in chatft(path, "retire", "someone-elses").stderr
    assert "chatft release kept-one" in chatft(path, "retire", "kept-one").stderr
    assert chatft(path, "keep", "someone-elses").exit_code == 1
    assert deleted(service) == [] and patches(service) == []
    result = chatft(path, "retire", "kept-one", "--force")
    assert result.exit_code == 0, result.output
    assert deleted(service) == ["kept-one"] and "--force" in result.stdout


def test_a_forced_retire_drops_the_keep_tag_first_so_a_failed_delete_is_not_protected(ctx) -> None:
    """Was: the delete failed and the endpoint kept its keep tag, so the janitor (which skips kept
    endpoints) never asked again and the GPU endpoint billed on."""
    service, _, later, path = ctx
    add(service, "kept-one", {**OURS, "CHATFT_KEEP": "1"}, later - timedelta(hours=6))
    service.fail_next("DELETE", r"/onlineEndpoints/kept-one$", 409, "Conflict")
    result = chatft(path, "retire", "kept-one", "--force")
    assert result.exit_code == 1 and "Traceback" not in result.output
    tags = service.online_endpoints.endpoints["kept-one"].tags
    assert not any(key.lower() == "chatft_keep" for key in tags), tags
    assert tags["chatft_managed"] == "true"


@pytest.mark.parametrize("command", ["keep", "release", "retire", "redeploy"])
def test_unknown_names_exit_2_with_what_to_type(ctx, command) -> None:
    _, _, _, path = ctx
    for name in ("no-such-endpoint", "nothing/like/this.jsonl"):
        result = chatft(path, command, name)
        assert result.exit_code == 2, result.output
        assert "no upload matches" in result.stderr and "SHA-256" in result.stderr


def test_redeploy_of_a_never_registered_upload_is_a_clear_error(ctx, blob_service, storage_env) -> None:
    service, _, _, path = ctx
    submit(blob_service, storage_env, service)  # submitted, training: no model yet
    result = chatft(path, "redeploy", "chats.jsonl")
    assert result.exit_code == 1
    assert "no registered model yet" in result.stderr and "Traceback" not in result.output
    assert row().status is Status.SUBMITTED


def test_a_transient_azure_error_is_one_line_and_exit_1(ctx) -> None:
    service, _, later, path = ctx
    add(service, "ep-busy", OURS, later - timedelta(hours=3))
    service.fail_next("PATCH", r"/onlineEndpoints/ep-busy$", 503, "ServiceUnavailable", times=20)
    result = chatft(path, "keep", "ep-busy")
    assert result.exit_code == 1
    assert "try again" in result.stderr and "Traceback" not in result.output
    service._failures.clear()


def test_no_sign_in_is_one_line_naming_az_login(ctx) -> None:
    """azure-identity raises CredentialUnavailableError (a ClientAuthenticationError with no response) when no
    credential in the chain has a sign-in (azure-identity `_exceptions.py`). For the app that is a managed identity
    endpoint warming up, retried; for a person it means `az login`, not "try again"."""
    service, _, later, path = ctx
    add(service, "ep-nologin", OURS, later - timedelta(hours=3))
    service.credential.unavailable = 50
    result = chatft(path, "keep", "ep-nologin")
    service.credential.unavailable = 0
    assert result.exit_code == 1
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]  # after the one "using settings" line
    assert "az login" in line and "try again" in line and "Traceback" not in result.output


# --- the local backend, acted on from a second process while another owns the scoring server ---


def _cli(settings: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = "from shared.entry.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args, "--settings", str(settings)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_the_local_backend_is_kept_released_and_retired_from_a_second_process(tmp_path, azurite) -> None:
    from shared.local.backend import LocalWorkspace, _alive
    from shared.local.retrieval import RetrievalModel
    from shared.settings import Settings
    from tests.chats import conversation

    values = {
        "ML_BACKEND": "local",
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
        "CHATFT_STORAGE": azurite.connection_string,
        "LEDGER_TABLE": f"ledger{uuid.uuid4().hex[:12]}",
        "PREPARED_CONTAINER": f"prep-{uuid.uuid4().hex[:10]}",
    }
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": values}))
    host = LocalWorkspace(Settings.from_env(values))  # stands for the running `chatft dev`
    RetrievalModel.train([conversation(i) for i in range(20)]).save(tmp_path / "state/models/m/1/model", {})
    try:
        host.begin_create_endpoint(name="ep-local", description="d", tags={"chatft_managed": "true"})
        host.begin_create_deployment(
            endpoint="ep-local", name="demo", model_id="x/models/m/versions/1", instance_type="Standard_NC24ads_A100_v4"
        )
        host.set_endpoint_traffic("ep-local", {"demo": 100})
        deadline = time.monotonic() + 20
        while host.get_endpoint("ep-local").provisioning_state != "Succeeded":
            assert time.monotonic() < deadline, "the scoring server did not start"
            time.sleep(0.05)
        pid = host._server("ep-local")["pid"]

        done = _cli(settings, "keep", "ep-local")
        assert done.returncode == 0, done.stderr
        assert host.get_endpoint("ep-local").tags == {"chatft_managed": "true", "chatft_keep": "true"}
        assert host.get_endpoint("ep-local").traffic == {"demo": 100} and _alive(pid)
        refused = _cli(settings, "retire", "ep-local")
        assert refused.returncode == 1 and "chatft release ep-local" in refused.stderr and _alive(pid)
        assert _cli(settings, "release", "ep-local").returncode == 0
        assert host.get_endpoint("ep-local").tags == {"chatft_managed": "true"}
        done = _cli(settings, "retire", "ep-local")
        assert done.returncode == 0, done.stderr
        assert host.get_endpoint("ep-local") is None
        deadline = time.monotonic() + 5
        while _alive(pid):  # the host reaps its child once it looks (as its timers do)
            assert time.monotonic() < deadline, "the scoring server was not stopped"
            time.sleep(0.05)
    finally:
        host.shutdown()
