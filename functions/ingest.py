"""Blob trigger: a new upload is validated, normalised, split and submitted for fine-tuning.

The blob arrives as an SDK-type binding (`BlobRef`: model binding data, never the bytes), so the
host never reads the whole blob into memory: we stream it with the storage SDK. Only the settings
module and the light binding converter are imported here; the storage SDK and the ingest code
load on the first invocation, keeping cold start lean.
"""

import azure.functions as func

from shared.azure.blobref import BlobRef
from shared.settings import STORAGE_CONNECTION, upload_trigger_source

bp = func.Blueprint()


@bp.function_name("ingest_upload")
@bp.blob_trigger(
    arg_name="client",
    path="%UPLOAD_CONTAINER%/{name}",
    connection=STORAGE_CONNECTION,
    source=func.BlobSource(upload_trigger_source()),
)
def ingest_upload(client: BlobRef) -> None:
    from shared.entry.app_wiring import ingest_handler

    ingest_handler(client)
