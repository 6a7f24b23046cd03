"""Which credential each client gets: the Functions host's identity-based connection settings,
and AZURE_CLIENT_ID for a user-assigned identity. Was: a bare DefaultAzureCredential() everywhere,
which ignores `<CONNECTION>__credential`/`__clientId`, so a user-assigned identity that the
deployment names only through the connection settings was never used."""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from shared.azure.identity import credential
from shared.settings import IdentityChoice, identity_for, storage_connection

UAMI = "11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, IdentityChoice(managed=False)),
        ({"AZURE_CLIENT_ID": UAMI}, IdentityChoice(managed=False, client_id=UAMI)),
        ({"CHATFT_STORAGE__credential": "managedidentity"}, IdentityChoice(managed=True)),
        (
            {"CHATFT_STORAGE__credential": "ManagedIdentity", "CHATFT_STORAGE__clientId": UAMI},
            IdentityChoice(managed=True, client_id=UAMI),
        ),
        (
            {"CHATFT_STORAGE__credential": "managedidentity", "CHATFT_STORAGE__managedIdentityResourceId": "/sub/x"},
            IdentityChoice(managed=True, resource_id="/sub/x"),
        ),
        ({"CHATFT_STORAGE__clientId": UAMI}, IdentityChoice(managed=False, client_id=UAMI)),
        ({"CHATFT_STORAGE__clientId": UAMI, "AZURE_CLIENT_ID": "other"}, IdentityChoice(managed=False, client_id=UAMI)),
    ],
    ids=[
        "nothing",
        "AZURE_CLIENT_ID",
        "system MI",
        "user MI",
        "user MI by resource id",
        "clientId only",
        "clientId wins",
    ],
)
def test_the_connection_settings_choose_the_identity(env: dict, expected: IdentityChoice) -> None:
    assert identity_for("CHATFT_STORAGE", env) == expected


def test_clients_without_a_connection_use_azure_client_id() -> None:
    assert identity_for(None, {"AZURE_CLIENT_ID": UAMI, "CHATFT_STORAGE__clientId": "x"}).client_id == UAMI


def test_the_real_credentials_carry_the_user_assigned_identity() -> None:
    managed = credential(
        "CHATFT_STORAGE", {"CHATFT_STORAGE__credential": "managedidentity", "CHATFT_STORAGE__clientId": UAMI}
    )
    assert isinstance(managed, ManagedIdentityCredential)
    assert managed._credential._settings["client_id"] == UAMI  # azure-identity's IMDS credential keeps it here
    default = credential(None, {"AZURE_CLIENT_ID": UAMI})
    assert isinstance(default, DefaultAzureCredential)
    [mi] = [c for c in default.credentials if isinstance(c, ManagedIdentityCredential)]
    assert mi._credential._settings["client_id"] == UAMI


def test_the_storage_clients_use_the_connection_identity(monkeypatch) -> None:
    from shared.azure.storage import blob_service

    env = {
        "CHATFT_STORAGE__blobServiceUri": "https://acct.blob.core.windows.net",
        "CHATFT_STORAGE__credential": "managedidentity",
        "CHATFT_STORAGE__clientId": UAMI,
    }
    service = blob_service(env)
    assert isinstance(service.credential, ManagedIdentityCredential)
    assert service.url.startswith("https://acct.blob.core.windows.net")


ACCOUNT = "https://acct.blob.core.windows.net"
OTHER = "https://other.blob.core.windows.net"


@pytest.mark.parametrize(
    ("env", "service", "expected"),
    [
        ({"CHATFT_STORAGE__serviceUri": ACCOUNT}, "blob", ACCOUNT),
        ({"CHATFT_STORAGE__blobServiceUri": ACCOUNT, "CHATFT_STORAGE__serviceUri": OTHER}, "blob", ACCOUNT),
        ({"CHATFT_STORAGE__serviceUri": ACCOUNT}, "table", None),
        ({"CHATFT_STORAGE__accountName": "acct"}, "blob", ACCOUNT),
        ({"CHATFT_STORAGE__accountName": "acct"}, "table", "https://acct.table.core.windows.net"),
        ({"CHATFT_STORAGE__accountName": "acct", "CHATFT_STORAGE__blobServiceUri": OTHER}, "blob", ACCOUNT),
        ({"CHATFT_STORAGE": "UseDevelopmentStorage=true", "CHATFT_STORAGE__accountName": "acct"}, "blob", None),
    ],
    ids=[
        "serviceUri names the blob service",
        "blobServiceUri wins over serviceUri",
        "serviceUri is not the table service",
        "accountName",
        "accountName for tables",
        "accountName first",
        "a connection string first of all",
    ],
)
def test_the_connection_settings_are_read_in_the_blob_extensions_order(env, service, expected) -> None:
    """The Functions storage extensions build a client from a connection the way
    Azure/azure-sdk-for-net sdk/extensions/Microsoft.Azure.WebJobs.Extensions.Clients/src/Shared/
    StorageClientProvider.cs does: a connection string if the setting itself has a value; else `accountName`
    (https://<account>.<service>.core.windows.net); else `<service>ServiceUri` (blobServiceUri, tableServiceUri);
    else the client's own constructor argument through Microsoft.Extensions.Azure, which for BlobServiceClient is
    `serviceUri`. MicrosoftDocs azure-docs includes/functions-storage-blob-connections.md ("Identity-based
    connections") says the same of the URIs: `<CONNECTION_NAME_PREFIX>__serviceUri` is the blob service URI,
    `blobServiceUri` its alias for a connection used across services, "If both versions are provided, the
    multi-service form is used", and "The URI can only designate the blob service"."""
    found = storage_connection(env, service=service)
    if expected is None and "CHATFT_STORAGE" in env:
        assert found == ("connection_string", env["CHATFT_STORAGE"])
    elif expected is None:
        assert found is None
    else:
        assert found == ("account_url", expected)
