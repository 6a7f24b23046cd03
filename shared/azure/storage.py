"""Blob Storage adapter: open uploads as streams, write prepared data. azure.storage.blob is imported lazily."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.logs import log_step
from shared.settings import STORAGE_CONNECTION, SettingsError, storage_connection

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient


class Update(Enum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    CONTENDED = "contended"
    """Other writers kept winning every attempt; the caller logs it, and whoever wrote last is kept."""


ATTEMPTS = 30


def _backoff(attempt: int) -> None:
    """Full jitter, growing to at most 0.5 s: ten racing writers settle within a few rounds."""
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))


class PreparedStore(Protocol):
    """Where prepared files and reports go."""

    def put_file(self, path: str, local: Path, content_type: str) -> str: ...

    def put_bytes(self, path: str, data: bytes, content_type: str) -> str: ...

    def read_first_line(self, path: str, limit: int = ...) -> bytes | None:
        """The first line of a blob without downloading the rest; None if the blob does not exist."""

    def read_bytes(self, path: str) -> bytes | None: ...

    def location(self, path: str) -> str:
        """How reports name a blob: <container>/<path>."""

    def update_bytes(self, path: str, change: Callable[[bytes | None], bytes | None], content_type: str) -> Update:
        """Read-modify-write guarded by the blob's ETag, retried on a race. `change` gets None for a
        missing blob and returns None to leave it as it is. Never raises because of other writers."""

    def put_if_newer(self, path: str, data: bytes, content_type: str, revision: int) -> bool:
        """Write unless the blob already holds this revision or a newer one (kept in its metadata)."""


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
    from shared.azure.identity import credential

    return BlobServiceClient(account_url=value, credential=credential(connection, env))


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

    def update_bytes(
        self, path: str, change: Callable[[bytes | None], bytes | None], content_type: str, attempts: int = ATTEMPTS
    ) -> Update:
        from azure.core.exceptions import ResourceNotFoundError

        self._ensure()
        client = self._container.get_blob_client(path)
        for attempt in range(attempts):
            try:
                download = client.download_blob()
                current, etag = download.readall(), download.properties.etag
            except ResourceNotFoundError:
                current, etag = None, None
            data = change(current)
            if data is None:
                return Update.UNCHANGED
            if _write_unless_changed(client, data, content_type, etag):
                return Update.WRITTEN
            _backoff(attempt)
        return Update.CONTENDED

    def put_if_newer(self, path: str, data: bytes, content_type: str, revision: int) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        self._ensure()
        client = self._container.get_blob_client(path)
        for attempt in range(ATTEMPTS):
            try:
                properties = client.get_blob_properties()
            except ResourceNotFoundError:
                properties = None
            if properties is not None and int(properties.metadata.get("revision", "0") or 0) >= revision:
                return False
            etag = properties.etag if properties is not None else None
            if _write_unless_changed(client, data, content_type, etag, {"revision": str(revision)}):
                return True
            _backoff(attempt)
        log_step("report.markdown_contended", path=path, revision=revision, level=logging.WARNING)
        return False


def _write_unless_changed(
    client: Any, data: bytes, content_type: str, etag: str | None, metadata: dict[str, str] | None = None
) -> bool:
    """Write a blob only if it is still as it was read (etag), or still absent (None); False if
    another writer got there first."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
    from azure.storage.blob import ContentSettings

    conditions: dict[str, Any] = (
        {"overwrite": False}
        if etag is None
        else {"overwrite": True, "etag": etag, "match_condition": MatchConditions.IfNotModified}
    )
    try:
        client.upload_blob(
            data, content_settings=ContentSettings(content_type=content_type), metadata=metadata, **conditions
        )
    except (ResourceModifiedError, ResourceExistsError, ResourceNotFoundError):
        return False
    return True
