"""Blob Storage adapter: open uploads as streams, write prepared data. azure.storage.blob is imported lazily."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.settings import STORAGE_CONNECTION, SettingsError, storage_connection

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient


class PreparedStore(Protocol):
    """Where prepared files and reports go."""

    def put_file(self, path: str, local: Path, content_type: str) -> str: ...

    def put_bytes(self, path: str, data: bytes, content_type: str) -> str: ...

    def read_first_line(self, path: str, limit: int = ...) -> bytes | None:
        """The first line of a blob without downloading the rest; None if the blob does not exist."""

    def read_bytes(self, path: str) -> bytes | None: ...

    def location(self, path: str) -> str:
        """How reports name a blob: <container>/<path>."""

    def update_bytes(self, path: str, change: Callable[[bytes], bytes], content_type: str) -> bool:
        """Read-modify-write guarded by the blob's ETag (retried on a race); False if the blob does not exist."""


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


def ensure_container(container: Any) -> None:
    """Create a container unless it exists (another worker may be creating it right now)."""
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        container.create_container()


class BlobPreparedStore:
    """PreparedStore on a blob container. Prepared blobs are content-addressed, so overwriting is safe."""

    def __init__(self, service: BlobServiceClient, container: str) -> None:
        self._container = service.get_container_client(container)
        self._ensured = False

    def _ensure(self) -> None:
        if not self._ensured:
            ensure_container(self._container)
            self._ensured = True

    def _upload(self, path: str, data: object, content_type: str) -> str:
        from azure.storage.blob import ContentSettings

        self._ensure()
        client = self._container.get_blob_client(path)
        client.upload_blob(data, overwrite=True, content_settings=ContentSettings(content_type=content_type))
        return self.location(path)

    def put_file(self, path: str, local: Path, content_type: str) -> str:
        with local.open("rb") as f:
            return self._upload(path, f, content_type)

    def put_bytes(self, path: str, data: bytes, content_type: str) -> str:
        return self._upload(path, data, content_type)

    def location(self, path: str) -> str:
        return f"{self._container.container_name}/{path}"

    def read_bytes(self, path: str) -> bytes | None:
        """A whole (small) blob, or None if it does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._container.get_blob_client(path).download_blob().readall()
        except ResourceNotFoundError:
            return None

    def read_first_line(self, path: str, limit: int = 1 << 20) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        head = bytearray()
        try:
            for chunk in self._container.get_blob_client(path).download_blob().chunks():
                head += chunk
                if b"\n" in head or len(head) >= limit:
                    break
        except ResourceNotFoundError:
            return None
        return bytes(head.split(b"\n", 1)[0][:limit])

    def update_bytes(self, path: str, change: Callable[[bytes], bytes], content_type: str, attempts: int = 5) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        client = self._container.get_blob_client(path)
        for _ in range(attempts):
            try:
                download = client.download_blob()
            except ResourceNotFoundError:
                return False
            data = change(download.readall())
            try:
                client.upload_blob(
                    data,
                    overwrite=True,
                    etag=download.properties.etag,
                    match_condition=MatchConditions.IfNotModified,
                    content_settings=ContentSettings(content_type=content_type),
                )
                return True
            except ResourceModifiedError:
                continue
        raise RuntimeError(f"{path} kept changing while being updated ({attempts} attempts)")
