"""A small local HTTP server that speaks the Azure ML online-endpoint scoring protocol.

The body is read as Azure ML's MLflow scoring script reads it for the deployed model's flavour
(azureml-assets mlflow-model-inference/context/mlflow_score_script.py; the rule is shared.local.scoring's
`conversation`): `flavor` "hftransformersv2" (the default fine-tuned chat model's, see tests/test_smoke_shape.py)
reads a list holding one conversation, "transformers" the list of messages. A body the model cannot read is the
model server's 400, which the managed endpoint answers as a 424 carrying it (how-to-troubleshoot-online-endpoints).
"""

from __future__ import annotations

import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

from shared.local.http import HttpError, JsonHandler
from shared.local.retrieval import DEFAULT_FLAVOR
from shared.local.scoring import conversation


class ScoringServer:
    """Checks the key and the azureml-model-deployment header; answers {"output": ...}."""

    def __init__(
        self, key: str = "test-key", deployment: str = "demo", answer: str = "Lower the learning rate."
    ) -> None:
        self.key, self.deployment, self.answer = key, deployment, answer
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[int] = []
        self.flavor = DEFAULT_FLAVOR
        self.delay = 0.0
        """Seconds each answer takes (a slow GPU endpoint)."""
        server = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                if server.fail_next:
                    return self._reply(server.fail_next.pop(0), {"error": "injected"})
                if self.headers.get("Authorization") != f"Bearer {server.key}":
                    return self._reply(401, {"error": "bad key"})
                if self.headers.get("azureml-model-deployment") != server.deployment:
                    return self._reply(404, {"error": "no such deployment"})
                try:
                    conversation(body, server.flavor)
                except HttpError as exc:  # the model's server answered 400; the endpoint wraps it in a 424
                    headers = {
                        "ms-azureml-model-error-statuscode": str(exc.status),
                        "ms-azureml-model-error-reason": "model_error",
                    }
                    return self._reply(
                        424, {"message": f"An unexpected error occurred in scoring script: {exc}"}, headers
                    )
                time.sleep(server.delay)
                return self._reply(200, {"output": server.answer})

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/score"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> ScoringServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
