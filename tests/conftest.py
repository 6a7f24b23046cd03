"""Shared fixtures. Azurite is real storage for the tests: started once per session on free ports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared.local.azurite import Azurite, start_or_reuse


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
def blob_service(azurite: Azurite):
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite.connection_string)
