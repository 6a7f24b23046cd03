"""Blob Storage adapter: open uploads as streams, write prepared data. azure.storage.blob is imported lazily."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from shared.settings import STORAGE_CONNECTION, SettingsError, storage_connection

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient


class PreparedStore(Protocol):
    """Where prepared files and reports go."""

    def put_file(self, path: str, local: Path, content_type: str) -> str: ...

    def put_bytes(self, path: str, data: bytes, content_type: str) -> str: ...


def blob_service(env: Mapping[str, str] | None = None, connection: str = STORAGE_CONNECTION) -> BlobServiceClient:
    """A BlobServiceClient from a connection setting: a connection string locally, managed identity in Azure."""
    from azure.storage.blob import BlobServiceClient

    found = storage_connection(env, connection=connection)
    if found is None:
        raise SettingsError(
            f"invalid settings: {connection}: missing (set it to a connection string, "
            f"or {connection}__blobServiceUri for managed identity)"
        )
    kind, value = found
    if kind == "connection_string":
        return BlobServiceClient.from_connection_string(value)
    from azure.identity import DefaultAzureCredential

    return BlobServiceClient(account_url=value, credential=DefaultAzureCredential())


class BlobPreparedStore:
    """PreparedStore on a blob container. Prepared blobs are content-addressed, so overwriting is safe."""

    def __init__(self, service: BlobServiceClient, container: str) -> None:
        self._container = service.get_container_client(container)
        self._ensured = False

    def _ensure(self) -> None:
        if self._ensured:
            return
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            self._container.create_container()
        self._ensured = True

    def _upload(self, path: str, data: object, content_type: str) -> str:
        from azure.storage.blob import ContentSettings

        self._ensure()
        client = self._container.get_blob_client(path)
        client.upload_blob(data, overwrite=True, content_settings=ContentSettings(content_type=content_type))
        return f"{self._container.container_name}/{path}"

    def put_file(self, path: str, local: Path, content_type: str) -> str:
        with local.open("rb") as f:
            return self._upload(path, f, content_type)

    def put_bytes(self, path: str, data: bytes, content_type: str) -> str:
        return self._upload(path, data, content_type)
