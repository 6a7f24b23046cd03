"""Blob Storage adapter: open uploads as streams, write prepared data. azure.storage.blob is imported lazily."""

from __future__ import annotations

import contextlib
import functools
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


CONNECT_SECONDS = 5.0
"""A command's connect timeout. urllib3 also uses it while it sends a request (connectionpool._make_request
switches to the read timeout only once the request is sent), so it bounds sending a small request too."""
SEND_SECONDS = 20.0
"""The connect timeout while sending upload blocks (8 MiB each): azure-storage-blob's own CONNECTION_TIMEOUT."""
READ_SECONDS = 10.0
"""No byte for this long after a command's request is sent: the storage is not answering (frozen, overloaded)."""
DEADLINE_SECONDS = 20.0
"""A command's storage call gives up by then: a retry starts only if it can still finish in time."""
_BACKOFF_MAX = 4.0
"""The longest backoff of the command's retry (1 s, then 1 + 2 s, each with up to 1 s of jitter)."""


def command_blob_options(*, sending_blocks: bool = False) -> dict[str, Any]:
    """BlobServiceClient options for a `chatft` command: every call answers or fails within DEADLINE_SECONDS,
    a frozen or stopped storage within seconds, not the SDK's minutes (its defaults are 20 s to connect, 60 s
    per read, 3 retries: azure/storage/blob/_shared/constants.py and policies.py). The keyword names are the
    SDK's: `connection_timeout` and `read_timeout` reach azure-core's RequestsTransport
    (_shared/base_client.py `_create_pipeline`), `retry_policy` replaces the ExponentialRetry."""
    return {
        "connection_timeout": SEND_SECONDS if sending_blocks else CONNECT_SECONDS,
        "read_timeout": READ_SECONDS,
        "retry_policy": _deadline_retry()(initial_backoff=1, increment_base=2, retry_total=2, random_jitter_range=1),
    }


def command_table_options() -> dict[str, Any]:
    """TableServiceClient options for a command, bounded like command_blob_options. azure-data-tables builds
    azure-core's RetryPolicy from these keywords (`retry_total`, `retry_read`, `retry_backoff_factor`,
    `retry_backoff_max`, and `timeout`, the total for one operation: azure/core/pipeline/policies/_retry.py)
    and RequestsTransport from `connection_timeout`/`read_timeout` (its defaults: 300 s each). A read that
    timed out is not sent again (`retry_read=0`): azure-core's `timeout` is checked only before an attempt."""
    return {
        "connection_timeout": CONNECT_SECONDS,
        "read_timeout": READ_SECONDS,
        "retry_total": 2,
        "retry_read": 0,
        "retry_backoff_factor": 0.5,
        "retry_backoff_max": 2,
        "timeout": DEADLINE_SECONDS,
    }


PROBE_CONNECT_SECONDS = 3.0
"""`chatft doctor`'s connect timeout: an address nothing answers on is said within 5 s, once (no retry)."""


def probe_blob_options() -> dict[str, Any]:
    """command_blob_options for a probe: a shorter connect, one attempt (the doctor asks, it does not insist)."""
    return {
        **command_blob_options(),
        "connection_timeout": PROBE_CONNECT_SECONDS,
        "retry_policy": _deadline_retry()(retry_total=0),
    }


def probe_table_options() -> dict[str, Any]:
    """command_table_options for a probe: a shorter connect, one attempt."""
    return {**command_table_options(), "connection_timeout": PROBE_CONNECT_SECONDS, "retry_total": 0}


@functools.cache
def _deadline_retry() -> type:
    """azure-storage-blob's ExponentialRetry with a total deadline per call (the storage retry has none:
    StorageRetryPolicy.send retries while its counts last, each attempt up to the read timeout)."""
    from azure.storage.blob import ExponentialRetry

    class DeadlineRetry(ExponentialRetry):
        def configure_retries(self, request: Any) -> dict[str, Any]:
            settings = super().configure_retries(request)
            settings["deadline"] = time.monotonic() + DEADLINE_SECONDS
            return settings

        def increment(self, settings: dict[str, Any], request: Any, response: Any = None, error: Any = None) -> bool:
            from shared.azure.identity import credential_failure

            if error is not None and credential_failure(error) is not None:
                return False  # no sign-in: asking the credential chain again cannot help (and repeats its log)
            if time.monotonic() + _BACKOFF_MAX + READ_SECONDS > settings["deadline"]:
                return False  # another attempt could not finish by the deadline: the caller gets this error now
            return super().increment(settings, request, response, error)

    return DeadlineRetry


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
