"""Put a local JSONL file into the upload container, and read back what the status commands need.

Why each choice:
- Chunked and parallel (`max_block_size`, `max_single_put_size`, `max_concurrency`): a large file
  goes up as blocks in parallel; a small one in one request.
- Never overwrites an existing upload: every name is written with `overwrite=False` (the SDK sends
  `If-None-Match: *` with the single put or the final Put Block List, so a blob created meanwhile
  fails with ResourceExistsError instead of being replaced); the next name is then tried
  (`chats.jsonl`, `chats-2.jsonl`, ...). Only `overwrite=True` replaces.
- Checksums, end to end. `validate_content=True` makes the SDK put a Content-MD5 of each request body
  (the single put, or each Put Block) that the service checks (azure/storage/blob/_shared/policies.py
  `_prepare_content_validation`; `_upload_helpers.upload_block_blob` sends every chunk through
  `upload_data_chunks` with it). The service does not check a whole-blob hash on Put Block List, so
  we also hash the bytes the SDK actually read: they must be the bytes that were validated (the
  file did not change in between), and the blob's stored Content-MD5 (which we set to the file's
  MD5) and size must match. A mismatch deletes the blob we wrote (only if it is still ours).
- The same bytes once: given the claim on the file's SHA-256 (shared.azure.content_claims), each name is
  recorded in it before it is tried, the claim is kept alive as blocks go up, and let go if nothing is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from shared.domain.content_claim import SHA_METADATA
from shared.domain.shell import chatft
from shared.settings import STORAGE_CONNECTION, SettingsError, storage_connection

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

    from shared.azure.content_claims import HeldClaim

BLOCK_SIZE = 8 << 20
SINGLE_PUT_SIZE = 8 << 20
CONCURRENCY = 4
MAX_SUFFIX = 1000
JSONL = "application/x-ndjson"

Progress = Callable[[int, int | None], None]


class UploadError(Exception):
    """The upload did not happen (or was undone): one line saying why."""


class UploadInterrupted(KeyboardInterrupt):
    """Ctrl-C during an upload; the message says what storage holds now (one line for the user)."""


class ChecksumMismatch(UploadError):
    """What reached storage is not what was validated; the blob was deleted."""


@dataclass(frozen=True)
class FileDigest:
    """The hashes of a file's bytes: sha256 names the upload (the ledger key), md5 is what Blob Storage keeps."""

    sha256: str
    md5: bytes
    size: int


class Hasher:
    """SHA-256 and MD5 in one pass (fed by the validator's read, or by `digest_file`)."""

    def __init__(self) -> None:
        self._sha, self._md5, self.size = hashlib.sha256(), hashlib.md5(), 0

    def update(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self._md5.update(chunk)
        self.size += len(chunk)

    def digest(self) -> FileDigest:
        return FileDigest(self._sha.hexdigest(), self._md5.digest(), self.size)


def digest_file(f: IO[bytes], chunk: int = 1 << 20) -> FileDigest:
    hasher = Hasher()
    while block := f.read(chunk):
        hasher.update(block)
    return hasher.digest()


class _HashingReader:
    """Hands the SDK the file's bytes and hashes exactly what it read. No seek/tell on purpose: the SDK
    then reads it front to back once, in one thread (`get_chunk_streams`), even when uploading in parallel."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.hasher = Hasher()

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self.hasher.update(data)
        return data


def candidate_names(name: str, limit: int = MAX_SUFFIX) -> Iterator[str]:
    """'team/chats.jsonl', 'team/chats-2.jsonl', 'team/chats-3.jsonl', ... (the suffix goes before the extension)."""
    path = PurePosixPath(name)
    yield name
    for n in range(2, limit + 1):
        yield str(path.with_name(f"{path.stem}-{n}{path.suffix}"))


def storage_client(env: Mapping[str, str] | None = None, **options: Any) -> BlobServiceClient:
    """A BlobServiceClient as shared.azure.storage.blob_service builds it, with a command's bounded timeouts
    (shared.azure.storage.command_blob_options) and client options (block sizes): a connection string
    (Azurite), else the account URL and DefaultAzureCredential (you)."""
    from azure.storage.blob import BlobServiceClient

    from shared.azure.storage import command_blob_options

    options = {**command_blob_options(), **options}

    found = storage_connection(env)
    if found is None:
        raise SettingsError(
            f"invalid settings: {STORAGE_CONNECTION}: missing (a connection string, "
            f"or {STORAGE_CONNECTION}__blobServiceUri to sign in as you)"
        )
    kind, value = found
    if kind == "connection_string":
        return BlobServiceClient.from_connection_string(value, **options)
    from shared.azure.identity import credential

    return BlobServiceClient(account_url=value, credential=credential(STORAGE_CONNECTION, env), **options)


def cli_retry() -> Any:
    """A command waits seconds, not the SDK's default minutes, before saying storage is unreachable."""
    from shared.azure.storage import command_blob_options

    return command_blob_options()["retry_policy"]


@dataclass(frozen=True)
class Uploaded:
    name: str
    etag: str
    size: int
    last_modified: datetime | None
    skipped: tuple[str, ...] = ()
    """Names already taken, tried first."""
    replaced: bool = False


@dataclass(frozen=True)
class UploadedBlob:
    """A blob in the upload container, as listed."""

    name: str
    etag: str
    last_modified: datetime | None
    size: int
    sha256: str = ""
    """From our metadata, when `chatft upload` put it there."""


class UploadContainer:
    """The upload container and the prepared container's reports, for the upload and status commands."""

    def __init__(self, service: BlobServiceClient, upload_container: str, prepared_container: str) -> None:
        self._uploads = service.get_container_client(upload_container)
        self._prepared = service.get_container_client(prepared_container)

    @property
    def upload_container(self) -> str:
        return self._uploads.container_name

    def upload_file(
        self,
        path: Path,
        name: str,
        digest: FileDigest,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
        max_concurrency: int = CONCURRENCY,
        claim: HeldClaim | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Uploaded:
        """Upload `path` as `name` (or the first free suffixed name); verify it is the validated bytes. With the
        claim on its bytes, the blob name it ends up under is recorded there; on any failure it is let go.
        `metadata` (the upload's choices, shared.domain.finetune.choices) is set on the blob with its sha256."""
        from shared.azure.content_claims import ClaimLost

        try:
            uploaded = self._upload_file(
                path, name, digest, overwrite, progress, max_concurrency, claim, dict(metadata or {})
            )
        except ClaimLost as exc:
            raise UploadError(str(exc)) from None
        except BaseException:  # Ctrl-C included: an upload that stored nothing holds nothing
            if claim is not None:
                claim.release()
            raise
        if claim is not None:
            claim.uploaded(uploaded.name, uploaded.etag)
        return uploaded

    def _upload_file(
        self,
        path: Path,
        name: str,
        digest: FileDigest,
        overwrite: bool,
        progress: Progress | None,
        max_concurrency: int,
        claim: HeldClaim | None,
        metadata: dict[str, str],
    ) -> Uploaded:
        from azure.core.exceptions import ResourceExistsError

        from shared.azure.storage import ensure_container

        ensure_container(self._uploads)
        if claim is not None:
            progress = _beating(claim, progress)
        skipped: list[str] = []
        for candidate in [name] if overwrite else candidate_names(name):
            client = self._uploads.get_blob_client(candidate)
            if not overwrite and client.exists():
                skipped.append(candidate)
                continue
            if claim is not None:  # before the blob can exist: ingest finds its name in the claim
                claim.naming(candidate)
            try:
                return self._put(client, path, digest, overwrite, progress, max_concurrency, tuple(skipped), metadata)
            except ResourceExistsError:  # created between our look and our write: never replaced
                skipped.append(candidate)
        raise UploadError(f"{name} and {MAX_SUFFIX - 1} suffixed names are taken: choose another with --name")

    def _put(
        self,
        client: Any,
        path: Path,
        digest: FileDigest,
        overwrite: bool,
        progress: Progress | None,
        max_concurrency: int,
        skipped: tuple[str, ...],
        metadata: dict[str, str],
    ) -> Uploaded:
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError

        with path.open("rb") as f:
            reader = _HashingReader(f)
            try:
                written = self._send(client, reader, digest, overwrite, progress, max_concurrency, metadata)
            except KeyboardInterrupt:
                raise UploadInterrupted(_interrupted(client, reader, digest)) from None
            except HttpResponseError as exc:
                if getattr(exc, "error_code", None) != "Md5Mismatch":
                    raise
                raise ChecksumMismatch(  # a single put: the service checked the whole body and stored nothing
                    f"{path} changed while it was being uploaded (storage computed another MD5); nothing was stored"
                ) from None
        etag = str(written.get("etag") or "")
        properties = client.get_blob_properties()
        problem = None
        if reader.hasher.digest() != digest:
            problem = f"{path} changed while it was being uploaded (its bytes are no longer the ones validated)"
        elif properties.size != digest.size or bytes(properties.content_settings.content_md5 or b"") != digest.md5:
            problem = (
                f"the stored blob does not match {path} (size {properties.size} vs {digest.size}, "
                f"Content-MD5 {_hex(properties.content_settings.content_md5)} vs {digest.md5.hex()})"
            )
        if problem:
            with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):  # only ours: a newer blob stays
                client.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
            raise ChecksumMismatch(f"{problem}; the blob {client.blob_name} was deleted, upload again")
        return Uploaded(client.blob_name, etag, digest.size, properties.last_modified, skipped, overwrite)

    @staticmethod
    def _send(
        client: Any,
        reader: _HashingReader,
        digest: FileDigest,
        overwrite: bool,
        progress: Progress | None,
        max_concurrency: int,
        metadata: dict[str, str],
    ) -> dict[str, Any]:
        """The SDK upload: one put up to max_single_put_size (the service checks the Content-MD5 we set against
        the whole body), else parallel blocks, each with a transactional MD5, committed with our Content-MD5."""
        from azure.storage.blob import ContentSettings

        return client.upload_blob(
            reader,
            length=digest.size,
            overwrite=overwrite,
            max_concurrency=max_concurrency,
            validate_content=True,
            content_settings=ContentSettings(content_type=JSONL, content_md5=bytearray(digest.md5)),
            metadata={**metadata, SHA_METADATA: digest.sha256},
            progress_hook=progress,
        )

    def list_uploads(self) -> list[UploadedBlob]:
        """Every blob in the upload container (names, times, our sha256 metadata; never the bytes)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return [
                UploadedBlob(
                    b.name,
                    str(b.etag or "").strip('"'),
                    b.last_modified,
                    int(b.size or 0),
                    (b.metadata or {}).get(SHA_METADATA, ""),
                )
                for b in self._uploads.list_blobs(include=["metadata"])
            ]
        except ResourceNotFoundError:  # no container yet: nothing uploaded
            return []

    def read_report(self, prefix: str) -> tuple[dict[str, Any] | None, datetime | None]:
        """report.json under `prefix` and when it was last written; (None, None) if there is none (yet)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            download = self._prepared.get_blob_client(f"{prefix}/report.json").download_blob()
            raw = download.readall()
        except ResourceNotFoundError:
            return None, None
        try:
            doc = json.loads(raw)
        except ValueError:
            return None, None
        return (doc if isinstance(doc, dict) else None), download.properties.last_modified

    def report_prefixes(self, dataset: str) -> list[tuple[str, datetime | None]]:
        """The `<dataset>/<sha16>` folders holding a report, newest first."""
        from azure.core.exceptions import ResourceNotFoundError

        found = []
        try:
            for blob in self._prepared.list_blobs(name_starts_with=f"{dataset}/"):
                parts = blob.name.split("/")
                if len(parts) == 3 and parts[2] == "report.json":
                    found.append((f"{parts[0]}/{parts[1]}", blob.last_modified))
        except ResourceNotFoundError:
            return []
        return sorted(found, key=lambda item: item[1].timestamp() if item[1] else 0.0, reverse=True)

    def failure_notes(
        self, dataset: str, since: datetime | None = None
    ) -> list[tuple[datetime | None, dict[str, Any]]]:
        """The notes ingest left for failed deliveries (<dataset>/_failed/<time>.json), oldest first; with
        `since`, only those written then or later (an earlier upload's notes are not read)."""
        from azure.core.exceptions import ResourceNotFoundError

        found = []
        try:
            for blob in self._prepared.list_blobs(name_starts_with=f"{dataset}/_failed/"):
                if since is not None and blob.last_modified is not None and blob.last_modified < since:
                    continue
                with contextlib.suppress(ResourceNotFoundError, ValueError):
                    doc = json.loads(self._prepared.get_blob_client(blob.name).download_blob().readall())
                    if isinstance(doc, dict):
                        found.append((blob.name, blob.last_modified, doc))
        except ResourceNotFoundError:
            return []
        return [(written, doc) for _, written, doc in sorted(found, key=lambda item: item[0])]

    def report_location(self, prefix: str) -> str:
        """How reports are named everywhere else: <container>/<prefix>/report.md."""
        return f"{self._prepared.container_name}/{prefix}/report.md"


def _beating(claim: HeldClaim, progress: Progress | None) -> Progress:
    """The SDK's progress hook, also keeping the claim alive (an exception here stops the upload uncommitted)."""

    def hook(current: int, total: int | None) -> None:
        claim.beat()
        if progress is not None:
            progress(current, total)

    return hook


def _interrupted(client: Any, reader: _HashingReader, digest: FileDigest) -> str:
    """What Ctrl-C left in storage. Until the SDK has read every byte, the commit (the single put, or Put Block
    List after the blocks) cannot have been sent: nothing is there, and staged blocks are discarded by the
    service. After that, one look at the blob tells (a second Ctrl-C leaves it unknown)."""
    name = client.blob_name
    nothing = f"interrupted: nothing was committed ({name} was not created; blocks already sent are discarded)"
    if reader.hasher.size < digest.size:
        return nothing
    try:
        metadata = client.get_blob_properties().metadata or {}
    except KeyboardInterrupt:
        return f"interrupted while committing {name}: it may be there; {chatft('status', name)} tells"
    except Exception:  # not there (or not reachable): nothing of ours was committed
        return nothing
    if metadata.get(SHA_METADATA) == digest.sha256:
        return f"interrupted after {name} was committed, before it was verified: {chatft('status', name)} shows it"
    return nothing


def _hex(value: Any) -> str:
    return bytes(value).hex() if value else "none"
