"""Which Azure errors a retry could fix. Transient ones are re-raised for the host to retry (or waited out by
the reconciler until its deadline); the rest are recorded as permanent failures a person must act on."""

from __future__ import annotations

import re

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BUSY_METHODS = frozenset({"PUT", "PATCH", "DELETE"})
ONLINE_RESOURCE = re.compile(r"/onlineEndpoints/[^/]+(/deployments/[^/]+)?/?$", re.IGNORECASE)
"""An online endpoint or one of its deployments (ARM paths of Microsoft.MachineLearningServices)."""


def is_transient(exc: BaseException) -> bool:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, (ServiceRequestError, ServiceResponseError, TimeoutError, ConnectionError)):
        return True
    if is_credential_unavailable(exc) or is_operation_in_progress(exc):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code in TRANSIENT_STATUS
    return False


def is_credential_unavailable(exc: BaseException) -> bool:
    """No token could be had, and no request reached Azure: a ClientAuthenticationError without a response.

    azure-identity raises CredentialUnavailableError (a ClientAuthenticationError subclass,
    azure/identity/_exceptions.py) when a credential cannot even try, e.g. ManagedIdentityCredential while the
    managed identity endpoint of a fresh instance is not answering yet, and DefaultAzureCredential raises a
    ClientAuthenticationError of its own when none of its credentials could. azure-core's HttpResponseError
    (azure/core/exceptions.py) keeps `response=None` then. A real 401/403 from Azure carries its response and
    stays a refusal."""
    from azure.core.exceptions import ClientAuthenticationError

    return isinstance(exc, ClientAuthenticationError) and getattr(exc, "response", None) is None


def is_operation_in_progress(exc: BaseException) -> bool:
    """A 409 Conflict answered to a PUT, PATCH or DELETE of an online endpoint or deployment.

    "When an operation is already in progress, any new operation on that same online endpoint responds with a
    409 conflict error. For example, if a create or update online endpoint operation is in progress,
    triggering a new delete operation throws an error." (MicrosoftDocs azure-ai-docs,
    articles/machine-learning/how-to-troubleshoot-online-endpoints.md, "HTTP status codes"). The generated
    operations raise ResourceExistsError for it (`error_map = {..., 409: ResourceExistsError}`), which keeps the
    response and its request, so the request it answered is read from there. A 409 elsewhere (a model
    version that already exists, say) is not this, and is left to its caller."""
    from azure.core.exceptions import HttpResponseError

    if not isinstance(exc, HttpResponseError) or exc.status_code != 409:
        return False
    request = getattr(getattr(exc, "response", None), "request", None)
    method = str(getattr(request, "method", "") or "").upper()
    url = str(getattr(request, "url", "") or "")
    path = url.split("?", 1)[0]
    return method in BUSY_METHODS and bool(ONLINE_RESOURCE.search(path))


def is_missing(exc: BaseException) -> bool:
    """Does `exc` say the asset does not exist? By version the SDK raises ResourceNotFoundError;
    by label (`get(name, label="latest")`) it raises its own ValidationException with error_type
    RESOURCE_NOT_FOUND (azure/ai/ml/_utils/_asset_utils.py, `_get_latest_version_from_container`
    and `_resolve_label_to_asset`)."""
    from azure.core.exceptions import ResourceNotFoundError

    if isinstance(exc, ResourceNotFoundError):
        return True
    from azure.ai.ml.exceptions import ValidationErrorType, ValidationException

    return isinstance(exc, ValidationException) and exc.error_type == ValidationErrorType.RESOURCE_NOT_FOUND
