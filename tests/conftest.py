"""Shared fixtures. Azurite is real storage for the tests: started once per session on free ports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest

import shared.runtime
from shared.azure.azureml.client import AzureMLWorkspace
from shared.local.azurite import Azurite, start_or_reuse
from tests.fake_aml import PHI3_TAGS, FakeRegistryClient, FakeWorkspaceClient, model


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
    """Settings for the Azure backend, a fresh ledger table, and the fake MLClients wired in."""
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
    shared.runtime.reset()
    blob_service.create_container(storage_env["UPLOAD_CONTAINER"])
    live_tags = {k: v for k, v in PHI3_TAGS.items() if not k.startswith("Finetune")}  # fine-tuning not retired
    registry, workspace = FakeRegistryClient([model(tags=live_tags)]), FakeWorkspaceClient()
    adapter = AzureMLWorkspace(
        shared.runtime.settings(),
        workspace_client=workspace,
        registry_client=registry,
        today=lambda: date(2026, 11, 22),
    )
    monkeypatch.setattr(shared.runtime, "workspace", lambda: adapter)
    yield workspace, registry
    monkeypatch.undo()
    shared.runtime.reset()


@pytest.fixture
def blob_service(azurite: Azurite):
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite.connection_string)
