"""The credential each Azure client uses: managed identity, never keys, read the way the Functions
host reads identity-based connections.

For a connection setting `<NAME>` (CHATFT_STORAGE): `<NAME>__credential=managedidentity` means
ManagedIdentityCredential, with the user-assigned identity `<NAME>__clientId` (or
`<NAME>__managedIdentityResourceId`) if set; otherwise DefaultAzureCredential, which takes a
user-assigned identity from AZURE_CLIENT_ID (and a developer's login locally). Azure ML and Azure
Monitor, which have no connection setting, use DefaultAzureCredential with AZURE_CLIENT_ID.
"""

from __future__ import annotations

import os
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


AZURE_HOSTED = ("IDENTITY_ENDPOINT", "MSI_ENDPOINT")
"""Set by App Service / Functions (and Azure ML compute) for their managed identity endpoint: running in Azure."""


def credential_failure(exc: BaseException) -> BaseException | None:
    """The sign-in failure in `exc`'s chain: a ClientAuthenticationError no service answered (`response` None).

    azure-identity raises CredentialUnavailableError (a ClientAuthenticationError, identity/_exceptions.py)
    when a credential cannot even try, and ChainedTokenCredential.get_token (DefaultAzureCredential's chain,
    identity/_credentials/chained.py) raises a plain ClientAuthenticationError whose message lists every
    source's failure once all gave up; a 401/403 from a service carries its response and is a refusal, not this.
    SDKs that wrap the error (azure-ai-ml) keep it as __cause__ or __context__, so the chain is walked."""
    from azure.core.exceptions import ClientAuthenticationError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientAuthenticationError) and getattr(current, "response", None) is None:
            return current
        current = current.__cause__ or current.__context__
    return None


def sign_in_problem(
    exc: BaseException, env: Mapping[str, str] | None = None, connection: str | None = None
) -> tuple[str, str] | None:
    """(what failed, the fix) for a sign-in failure, None when `exc` is not one.

    A person signs in with `az login`; the app's managed identity is fixed by the setting that selects it
    (AZURE_CLIENT_ID, or `<connection>__clientId`) naming an identity assigned to the app. Never the SDK's
    text: DefaultAzureCredential's message is several lines per source it tried."""
    if credential_failure(exc) is None:
        return None
    choice = identity_for(connection, os.environ if env is None else env)
    if choice.managed or any(os.environ.get(name) for name in AZURE_HOSTED):  # the machine's, not a settings file's
        setting = f"{connection}__clientId" if connection and choice.managed else "AZURE_CLIENT_ID"
        return (
            "the managed identity gave no token",
            f"check that {setting} names a user-assigned identity assigned to this app "
            "(empty: the app's system-assigned identity must be on)",
        )
    return (
        "not signed in to Azure (no login found, or it expired)",
        "run `az login` (or `azd auth login`), then try again",
    )


def sign_in_failure(
    exc: BaseException, what: str = "", env: Mapping[str, str] | None = None, connection: str | None = None
) -> str | None:
    """One line for a sign-in failure: what failed (`what`, e.g. "storage"), why, and the fix; None when `exc`
    is not one."""
    found = sign_in_problem(exc, env, connection)
    return None if found is None else f"{what + ': ' if what else ''}{found[0]}: {found[1]}"
