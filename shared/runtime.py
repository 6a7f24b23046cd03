"""Per-process wiring for the function handlers: settings and clients built once, on first use."""

from __future__ import annotations

import functools

from shared.ingest import IngestOutcome, ingest_blob
from shared.settings import Settings
from shared.storage import BlobPreparedStore, blob_service


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def prepared_store() -> BlobPreparedStore:
    return BlobPreparedStore(blob_service(), settings().prepared_container)


def ingest_handler(client: object) -> IngestOutcome:
    return ingest_blob(client, settings(), prepared_store())  # type: ignore[arg-type]
