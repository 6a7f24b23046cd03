"""SDK-type blob trigger binding that costs nothing at cold start.

The Functions host sends a deferred (SDK-type) binding as *model binding data*: the connection
setting name, container and blob name, never the blob's bytes. The official converter
(azurefunctions-extensions-bindings-blob) turns that into an azure.storage.blob BlobClient, but
importing it loads azure.storage.blob and azure.identity: ~150 ms, more than half of our cold
start. This converter, registered through the same extension base, hands the function a
`BlobRef` instead; the storage SDK loads on first use, inside the invocation.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from azurefunctions.extensions.base import Datum, InConverter, SdkType

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, StorageStreamDownloader


class BlobRef(SdkType):
    """Where the triggering blob is. `download_blob()` streams it with the storage SDK."""

    def __init__(self, *, data: Any = None) -> None:
        super().__init__(data=data)
        content = json.loads(data.content) if data is not None else {}
        self.connection: str = content.get("Connection") or ""
        self.container_name: str = content.get("ContainerName") or ""
        self.blob_name: str = content.get("BlobName") or ""
        if not (self.connection and self.container_name and self.blob_name):
            raise ValueError(f"blob trigger binding data lacks Connection/ContainerName/BlobName: {content!r}")
        self._client: BlobClient | None = None

    def get_sdk_type(self) -> BlobRef:
        return self

    def client(self) -> BlobClient:
        """An azure.storage.blob BlobClient, built from the binding's connection setting on first use."""
        if self._client is None:
            from shared.azure.storage import blob_service

            service = blob_service(connection=self.connection)
            self._client = service.get_blob_client(self.container_name, self.blob_name)
        return self._client

    def download_blob(self) -> StorageStreamDownloader:
        return self.client().download_blob()

    def __repr__(self) -> str:
        return f"BlobRef({self.container_name}/{self.blob_name} via {self.connection})"


class BlobRefConverter(InConverter, binding="blob", trigger="blobTrigger"):
    """Registered with the worker's deferred-binding registry when this module is imported."""

    @classmethod
    def check_input_type_annotation(cls, pytype: type) -> bool:
        return isinstance(pytype, type) and issubclass(pytype, BlobRef)

    @classmethod
    def decode(cls, data: Datum, *, trigger_metadata: Any = None, pytype: type | None = None) -> BlobRef | None:
        if data is None or data.type is None:
            return None
        if data.type != "model_binding_data":
            raise ValueError(f"the blob trigger expects model binding data (an SDK-type binding), got {data.type!r}")
        return BlobRef(data=data.value)

    @classmethod
    def has_implicit_output(cls) -> bool:
        return False
