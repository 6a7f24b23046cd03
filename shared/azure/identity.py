"""The credential each Azure client uses: managed identity, never keys, read the way the Functions
host reads identity-based connections.

For a connection setting `<NAME>` (CHATFT_STORAGE): `<NAME>__credential=managedidentity` means
ManagedIdentityCredential, with the user-assigned identity `<NAME>__clientId` (or
`<NAME>__managedIdentityResourceId`) if set; otherwise DefaultAzureCredential, which takes a
user-assigned identity from AZURE_CLIENT_ID (and a developer's login locally). Azure ML and Azure
Monitor, which have no connection setting, use DefaultAzureCredential with AZURE_CLIENT_ID.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.settings import identity_for


def credential(connection: str | None = None, env: Mapping[str, str] | None = None) -> Any:
    """A TokenCredential for `connection` (azure.identity imported only now)."""
    choice = identity_for(connection, env)
    if choice.managed:
        from azure.identity import ManagedIdentityCredential

        if choice.resource_id:
            return ManagedIdentityCredential(identity_config={"resource_id": choice.resource_id})
        return ManagedIdentityCredential(client_id=choice.client_id)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=choice.client_id)
