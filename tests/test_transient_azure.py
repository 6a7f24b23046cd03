"""Azure answers that mean "not now" are waited out, through the real functions (issue 18 item 14).

The workspace is the real azure-ai-ml MLClient over tests/aml_rest.py, so the exceptions are the SDK's own:
  - a 409 on an online endpoint or deployment write is "an operation is in progress" (MicrosoftDocs azure-ai-docs
    articles/machine-learning/how-to-troubleshoot-online-endpoints.md, "HTTP status codes": "When an operation is
    already in progress, any new operation on that same online endpoint responds with a 409 conflict error");
  - azure-identity's CredentialUnavailableError (a ClientAuthenticationError without a response,
    azure/identity/_exceptions.py and azure/core/exceptions.py) is a managed identity not answering yet.
Before, the first deleted the deployment being created and the second failed the upload.
"""

from __future__ import annotations

import pytest
from azure.identity import CredentialUnavailableError

from shared.domain.ledger import Status
from tests.deploy_flow import completed, row, send, submit, tick
from tests.test_submission_azurite import ledger_row, trigger, upload

DEPLOYMENT_PUT = r"/onlineEndpoints/[^/]+/deployments/[^/]+$"


def test_a_busy_endpoint_is_waited_for_not_cleaned_up(aml, blob_service, storage_env) -> None:
    service, _ = aml
    job, tags = submit(blob_service, storage_env, service)
    service.fail_next("PUT", DEPLOYMENT_PUT, 409, "Conflict", "An operation is in progress on the endpoint", times=2)
    send(completed(job, tags))
    for _ in range(10):
        if len(service.calls_to("PUT", DEPLOYMENT_PUT)) >= 2:
            break
        tick()
    refused = service.calls_to("PUT", DEPLOYMENT_PUT)
    assert [r.status for r in refused] == [409, 409]
    entry = row()
    assert entry.status is Status.DEPLOYING and entry.deploy["step"] == "create_deployment"
    assert "Conflict" in entry.deploy["last_error"] and "error" not in entry.deploy
    assert service.calls_to("DELETE", r"/onlineEndpoints/") == []
    tick()  # the other operation is over: the same deployment is created
    assert [r.status for r in service.calls_to("PUT", DEPLOYMENT_PUT)] == [409, 409, 201]
    assert row().deploy["step"] != "cleanup" and row().status is Status.DEPLOYING


def test_an_identity_not_ready_yet_retries_the_upload(aml, blob_service, storage_env) -> None:
    service, _ = aml
    service.credential.unavailable = 1
    upload(blob_service, storage_env)
    with pytest.raises(CredentialUnavailableError):
        trigger()  # raised for the host to deliver again
    assert ledger_row().status is Status.RETRYABLE and service.jobs.created == []
    trigger()  # the host's retry, with the identity answering
    assert ledger_row().status is Status.SUBMITTED and len(service.jobs.created) == 1
