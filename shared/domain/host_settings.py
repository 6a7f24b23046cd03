"""Which of a function app's settings belong to the Functions host, the platform or the Azure SDKs rather than to
chatft, so `chatft doctor` can list the rest as read by nothing (left by an earlier version: the AVM site
module merges app settings, so a setting a newer template no longer sets stays on the app).

Sources: the Azure Functions app settings reference (learn.microsoft.com/azure/azure-functions/
functions-app-settings: AzureWebJobs*, AzureFunctionsJobHost__*, FUNCTIONS_*, APPLICATIONINSIGHTS_*,
APPINSIGHTS_*, WEBSITE_*, SCM_*, PYTHON_*, ENABLE_ORYX_BUILD, PIP_*), identity-based connections
(`<CONNECTION>__<property>`, learn.microsoft.com/azure/azure-functions/functions-reference#connections), and the
environment variables azure-identity's EnvironmentCredential and azure-core read.
"""

from __future__ import annotations

from collections.abc import Iterable

HOST_PREFIXES = (
    "AzureWebJobs",
    "AzureFunctionsJobHost__",
    "FUNCTIONS_",
    "AZURE_FUNCTIONS_",
    "APPLICATIONINSIGHTS_",
    "APPINSIGHTS_",
    "WEBSITE_",
    "SCM_",
    "PYTHON_",
    "PIP_",
    "OTEL_",
    "DOCKER_",
)
HOST_NAMES = frozenset({"ENABLE_ORYX_BUILD", "FUNCTION_APP_EDIT_MODE", "MACHINEKEY_DecryptionKey"})
SDK_NAMES = frozenset(
    {
        # azure-identity EnvironmentCredential / DefaultAzureCredential
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "AZURE_TOKEN_CREDENTIALS",
        # azure-core settings
        "AZURE_LOG_LEVEL",
        "AZURE_TRACING_ENABLED",
        "AZURE_SDK_TRACING_IMPLEMENTATION",
    }
)


def unused_settings(names: Iterable[str], read: Iterable[str], connections: Iterable[str]) -> list[str]:
    """The names neither chatft (`read`), nor a connection it uses (`<connection>__*`), nor the host, the
    platform or the SDKs read; sorted."""
    read_set, prefixes = set(read), tuple(f"{c}__" for c in connections)
    return sorted(
        n
        for n in names
        if n not in read_set
        and n not in HOST_NAMES
        and n not in SDK_NAMES
        and not n.startswith(HOST_PREFIXES)
        and not n.startswith(prefixes)
    )
