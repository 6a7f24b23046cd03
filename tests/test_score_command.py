"""`chatft score PROMPT --settings/--env [--endpoint NAME]` asks an Azure endpoint, through the real command line,
Azurite and the REAL azure-ai-ml MLClient over the in-memory Azure ML service (tests/aml_rest.py).

Auth as the endpoint is configured: `OnlineEndpointOperations.get_keys` reads the endpoint's auth_mode and returns
keys (key: listKeys), an AML token (aml_token: getToken) or, for aad_token, an EndpointAadToken from the
client's own credential for `https://ml.azure.com` (azure/ai/ml/operations/_online_endpoint_operations.py,
`_get_online_credentials`; azure/ai/ml/constants/_common.py AAD_TOKEN_RESOURCE_ENDPOINT). The body is the shape
the smoke test settled on (the ledger row's `deploy["input_shape"]`, shared/azure/scoring.py).
"""

from __future__ import annotations

import json
import time

from azure.core.credentials import AccessToken

from shared.azure.scoring import InputShape
from tests.deploy_flow import row
from tests.scoring_server import ScoringServer
from tests.test_endpoint_action_commands import chatft, ctx, live_upload  # noqa: F401  (ctx is a fixture)

PROMPT = "How do I lower the learning rate?"


def test_score_asks_the_newest_live_azure_endpoint_with_its_key_in_the_shape_the_smoke_test_found(
    ctx,  # noqa: F811
    blob_service,
    storage_env,
) -> None:
    service, _, _, path = ctx
    endpoint = live_upload(service, blob_service, storage_env)
    shape = row().deploy["input_shape"]
    with ScoringServer(key="k", deployment="demo", answer="Halve it.") as server:
        service.online_endpoints.scoring_uri = server.url
        service.online_endpoints._json[endpoint]["properties"]["scoringUri"] = server.url
        result = chatft(path, "score", PROMPT)
    assert result.exit_code == 0, result.output
    assert "Halve it." in result.stdout and endpoint in result.stdout
    [request] = server.requests
    assert (
        request["headers"]["authorization"] == "Bearer k" and request["headers"]["azureml-model-deployment"] == "demo"
    )
    strings = json.loads(request["body"])["input_data"]["input_string"]
    message = {"role": "user", "content": PROMPT}
    assert strings == ([[message]] if shape == InputShape.CONVERSATIONS.value else [message])


def test_score_an_aad_token_endpoint_with_a_token_for_azure_ml(ctx, blob_service, storage_env) -> None:  # noqa: F811
    service, _, _, path = ctx
    endpoint = live_upload(service, blob_service, storage_env)
    service.online_endpoints._json[endpoint]["properties"]["authMode"] = "AADToken"
    scopes: list[tuple[str, ...]] = []

    def get_token(*asked: str, **kwargs: object) -> AccessToken:
        scopes.append(asked)
        return AccessToken("entra-token", int(time.time()) + 3600)

    service.credential.get_token = get_token  # the MLClient's own credential (tests/aml_rest.workspace_client)
    with ScoringServer(key="entra-token", deployment="demo") as server:
        service.online_endpoints._json[endpoint]["properties"]["scoringUri"] = server.url
        result = chatft(path, "score", PROMPT, "--endpoint", endpoint)
    assert result.exit_code == 0, result.output
    assert ("https://ml.azure.com/.default",) in scopes
    assert [r["headers"]["authorization"] for r in server.requests] == ["Bearer entra-token"]


def test_score_of_an_endpoint_the_workspace_does_not_have_is_one_line_and_exit_2(ctx) -> None:  # noqa: F811
    _, _, _, path = ctx
    result = chatft(path, "score", PROMPT, "--endpoint", "cft-gone-0000")
    assert result.exit_code == 2, result.output
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "cft-gone-0000" in error and "Traceback" not in result.output


def test_score_json_of_a_local_endpoint_names_the_deployment_and_the_shape_it_answered(tmp_path, monkeypatch) -> None:
    """Offline the same object as against Azure (tests/test_json_output.py holds its keys): the local scoring
    server answers the conversation shape first (shared/local/scoring.py, the hftransformersv2 flavour)."""
    from typer.testing import CliRunner

    from shared.entry.cli.app import app
    from shared.local.backend import LocalWorkspace
    from shared.local.retrieval import RetrievalModel
    from shared.settings import Settings
    from tests.test_json_output import SCORE_KEYS
    from tests.test_local_backend import conversation, live_endpoint

    monkeypatch.chdir(tmp_path)
    state = tmp_path / ".chatft"
    workspace = LocalWorkspace(Settings.from_env({"ML_BACKEND": "local", "LOCAL_STATE_DIR": str(state)}))
    RetrievalModel.train([conversation(i) for i in range(20)]).save(state / "models" / "m" / "1" / "model", {})
    try:
        scoring_uri, _ = live_endpoint(workspace, "ep-live")
        result = CliRunner().invoke(app, ["score", "Question 3.0: how do I tune model 3?", "--json"])
    finally:
        workspace.shutdown()
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc.keys() == SCORE_KEYS and doc["endpoint"] == "ep-live" and doc["deployment"] == "demo"
    assert doc["scoring_uri"] == scoring_uri and doc["input_shape"] == InputShape.CONVERSATIONS.value
    assert doc["answer"] == "Answer 3.0: lower the learning rate for 3." and doc["latency_ms"] >= 0
    assert doc["request"]["input_data"]["input_string"] == [
        [{"role": "user", "content": "Question 3.0: how do I tune model 3?"}]
    ]
