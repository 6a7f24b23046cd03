"""Shared fixtures. Azurite is real storage for the tests: started once per session on free ports."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

import shared.entry.app_wiring
from shared.azure.azureml import lro
from shared.azure.azureml.client import AzureMLWorkspace
from shared.local.azurite import Azurite, start_or_reuse
from tests.aml_rest import AmlRestService, FakeCredential, workspace_client
from tests.fake_aml import FakeJobs, FakeRegistryClient, model
from tests.mlflow_rest import MlflowRestService

LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}
_real_getaddrinfo = socket.getaddrinfo
network_attempts: list[tuple[str, str]] = []


def _loopback_only(host, *args, **kwargs):
    """No test may touch the network: a name other than loopback fails as it does on a machine with no network
    (a resolution error), and the test that asked is recorded."""
    name = host.decode() if isinstance(host, bytes) else str(host or "")
    if name.lower() not in LOOPBACK and not name.startswith("127."):
        network_attempts.append((os.environ.get("PYTEST_CURRENT_TEST", "?"), name))
        raise socket.gaierror(socket.EAI_NONAME, f"tests do not resolve {name}: no network")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only


# The function-app tests: `make test` runs them again on the deployed Python with the deployed requirements
# (`pytest -m deployed` in .venv-deployed): indexing, the four handlers, event decoding, ingest against Azurite,
# and the real worker library.
DEPLOYED = {
    "tests.test_function_app",
    "tests.test_real_worker",
    "tests.test_deployed_runtime",
    "tests.test_blob_webhook",
    "tests.test_ingest_azurite",
    "tests.test_hostile_input",
    "tests.test_submission_azurite",
    "tests.test_job_events",
    "tests.test_job_poll",
    "tests.test_janitor",
    "tests.test_transient_azure",
    "tests.test_model_tag",
    "tests.test_identity",
    "tests.test_tracking_rest",
    "tests.test_event_deadline",
    "tests.test_content_claims",
    "tests.test_ledger_rows",
    "tests.test_settings",
    "tests.test_evaluation_metrics",
    "tests.test_guards",
    "tests.test_training_chart",
}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`-m deployed` collects only the deployed modules: the others may import the CLI's packages (typer, rich),
    which the deployed environment, like the function app, does not have."""
    name = collection_path.name
    if config.getoption("markexpr") == "deployed" and name.startswith("test_") and name.endswith(".py"):
        return f"tests.{collection_path.stem}" not in DEPLOYED
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in DEPLOYED:
            item.add_marker(pytest.mark.deployed)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    emulator = start_or_reuse()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def storage_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """App settings pointing at Azurite, with per-test containers so tests never share state."""
    suffix = uuid.uuid4().hex[:10]
    env = {
        "CHATFT_STORAGE": azurite.connection_string,
        "UPLOAD_CONTAINER": f"up-{suffix}",
        "PREPARED_CONTAINER": f"prep-{suffix}",
        "ML_BACKEND": "none",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def aml(storage_env, blob_service, monkeypatch):
    """Settings for the Azure backend, a fresh ledger table, and the MLClients wired in: the workspace is the
    real azure-ai-ml MLClient over the in-memory REST service (tests/aml_rest.py), yielded first so tests can
    inspect and steer it; the registry is tests/fake_aml.FakeRegistryClient; pipeline submission is
    tests/fake_aml.FakeJobs (service.jobs)."""
    env = {
        "ML_BACKEND": "azure",
        "AML_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
        "AML_RESOURCE_GROUP": "rg-chatft",
        "AML_WORKSPACE": "ws-chatft",
        "LEDGER_TABLE": f"ledger{uuid.uuid4().hex[:12]}",
        "SUBMIT_CLAIM_TIMEOUT_SECONDS": "600",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    shared.entry.app_wiring.reset()
    blob_service.create_container(storage_env["UPLOAD_CONTAINER"])
    registry = FakeRegistryClient([model()])  # the default FINETUNE_MODEL
    service = AmlRestService()
    service.mlflow = MlflowRestService(location=service.location, credential=FakeCredential())
    fallbacks: list[str] = []  # lro.py must reach the SDK's generated operations, never fall back to a poller
    monkeypatch.setattr(lro, "_fallback", lambda what, exc: fallbacks.append(f"{what}: {exc}"))
    threads_before = set(threading.enumerate())
    adapter = AzureMLWorkspace(
        shared.entry.app_wiring.settings(),
        workspace_client=workspace_client(service, FakeJobs()),
        registry_client=registry,
        today=lambda: date(2026, 11, 22),
        tracking_transport=service.mlflow,
        credential_factory=lambda: service.mlflow.credential,
    )
    monkeypatch.setattr(shared.entry.app_wiring, "workspace", lambda: adapter)
    yield service, registry
    monkeypatch.undo()
    shared.entry.app_wiring.reset()
    assert not service.unserved, f"requests the Azure ML test service could not serve: {service.unserved}"
    assert not service.mlflow.unserved, f"requests the MLflow test server could not serve: {service.mlflow.unserved}"
    assert not fallbacks, f"lro.py fell back to the public begin_* (a poller thread): {fallbacks}"
    pollers = [t.name for t in threading.enumerate() if t not in threads_before and t.name.startswith("LROPoller")]
    assert not pollers, f"azure-core poller threads left running: {pollers}"


@pytest.fixture
def blob_service(azurite: Azurite):
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite.connection_string)


def pytest_terminal_summary(terminalreporter) -> None:
    for test, host in dict.fromkeys(network_attempts):
        terminalreporter.write_line(f"network refused: {test} tried to resolve {host}")


def pytest_sessionfinish(session, exitstatus) -> None:
    if network_attempts:  # a test that reached for the network fails the run, even if it coped with the refusal
        session.exitstatus = 1
