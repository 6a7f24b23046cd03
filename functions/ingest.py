"""Blob trigger: a new upload in the upload container is validated, normalised and split.

The blob arrives as an SDK-type `BlobClient` (azurefunctions-extensions-bindings-blob), so the
host never reads the whole blob into memory: we stream it. Only the settings module is imported
here; the ingest code loads on first invocation, keeping cold start lean.
"""

from __future__ import annotations

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from shared.settings import STORAGE_CONNECTION, upload_trigger_source

bp = func.Blueprint()


@bp.function_name("ingest_upload")
@bp.blob_trigger(
    arg_name="client",
    path="%UPLOAD_CONTAINER%/{name}",
    connection=STORAGE_CONNECTION,
    source=func.BlobSource(upload_trigger_source()),
)
def ingest_upload(client: blob.BlobClient) -> None:
    from shared.runtime import ingest_handler

    ingest_handler(client)
