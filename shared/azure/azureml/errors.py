"""Which Azure errors a retry could fix. Transient ones are re-raised for the host to retry;
the rest are recorded as permanent failures a person must act on."""

from __future__ import annotations

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, (ServiceRequestError, ServiceResponseError, TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code in TRANSIENT_STATUS
    return False


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
