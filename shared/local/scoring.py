"""A local managed online endpoint: `python -m shared.local.scoring <endpoint folder>`.

Speaks the Azure ML scoring protocol on 127.0.0.1 (a free port, written to server.json):
key auth (`Authorization: Bearer <key>`), the `azureml-model-deployment` header or else the
traffic split, `{"input_data": {"input_string": ..., "parameters": {...}}}` in and `{"output": "<text>"}`
out, JSON errors with the right status codes. Like Azure ML's MLflow scoring script (azureml-assets
mlflow-model-inference/context/mlflow_score_script.py), the deployed model's flavour decides what
`input_string` must be: a list holding the conversation for `hftransformersv2` (passed to the model as
it came), the conversation's messages for `transformers` (unwrapped from input_string); the other is a 400. The model
answering is the deployment's own (shared.local.served_model: the retrieval stand-in, or base + LoRA adapter generating
with the request's `parameters`). It counts requests (per second, so a demo-sized idle window works) into
requests.json for the local UsageMetrics.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, NamedTuple

from shared.domain.deploy.chat_turns import servable_problem
from shared.local.http import HttpError, JsonHandler, JsonServer
from shared.local.procs import watch_parent
from shared.local.retrieval import flavor_of
from shared.local.served_model import ServedModel, load_served
from shared.local.state import read_json, write_json

MAX_BODY = 1 << 20
MODELS_FILE = "models.json"
"""Each deployment's model load outcome (Succeeded, or Failed with the error) and the server's pid: as Azure ML's
container runs init() before its deployment counts as provisioned, the backend reports a deployment Succeeded only
once its model is loaded, and Failed when it cannot be."""


def conversation(body: bytes, flavor: str) -> list[dict[str, str]]:
    """The messages to answer, from the one input_string shape the model's flavour reads; HttpError(400) otherwise."""
    return scoring_request(body, flavor)[0]


def scoring_request(body: bytes, flavor: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The messages to answer, from the one input_string shape the model's flavour reads, and the request's
    generation `parameters` (passed to the model as they came); HttpError(400) otherwise."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise HttpError(400, f"body is not JSON: {exc}") from exc
    data = payload.get("input_data") if isinstance(payload, dict) else None
    strings = data.get("input_string") if isinstance(data, dict) else None
    if not isinstance(strings, list) or not strings:
        raise HttpError(400, "expected {'input_data': {'input_string': [...], 'parameters': {...}}}")
    if flavor == "hftransformersv2":
        if len(strings) != 1 or not isinstance(strings[0], list):
            raise HttpError(400, "a hftransformersv2 model reads input_string as a list holding one conversation")
        messages = strings[0]
    elif any(not isinstance(m, dict) for m in strings):
        raise HttpError(400, "a transformers model reads input_string as the conversation's messages")
    else:
        messages = strings
    if not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages
    ):
        raise HttpError(400, "each message needs a string role and content")
    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        raise HttpError(400, "parameters must be an object")
    problem = servable_problem(messages)  # what the chat-completion server of a catalog model refuses
    if problem:
        raise HttpError(400, problem)
    return messages, parameters


class Endpoint:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.models: dict[str, tuple[ServedModel, str]] = {}
        self.outcomes: dict[str, dict[str, str]] = {}
        self.counts: dict[str, int] = read_json(folder / "requests.json", {}) or {}
        self.lock = threading.Lock()
        self.loading = threading.Lock()
        """Held while a model loads (a LoRA model takes seconds): the request counts are not held up meanwhile."""

    def config(self) -> dict[str, Any]:
        return read_json(self.folder / "endpoint.json", {}) or {}

    def count(self) -> None:
        """Requests per second (summed into per-minute or any window by the reader); a day is kept."""
        now = int(time.time())
        with self.lock:
            self.counts[str(now)] = self.counts.get(str(now), 0) + 1
            if len(self.counts) > 1000:
                self.counts = {k: v for k, v in self.counts.items() if int(k) > now - 86400}
            write_json(self.folder / "requests.json", self.counts)

    def route(self, config: dict[str, Any], header: str | None) -> str:
        deployments = config.get("deployments", {})
        if header:
            if header not in deployments:
                raise HttpError(404, f"deployment {header!r} not found on endpoint {config.get('name')}")
            return header
        live = sorted(
            ((w, d) for d, w in (config.get("traffic") or {}).items() if w > 0 and d in deployments), reverse=True
        )
        if not live:
            raise HttpError(424, "no valid deployments to route to: set traffic or the azureml-model-deployment header")
        return live[0][1]

    def model(self, deployment: str, config: dict[str, Any]) -> tuple[ServedModel, str]:
        """The deployment's model (retrieval or LoRA, by its MLmodel) and its Hugging Face flavour, loaded once;
        the outcome goes to models.json, which the backend reads as the deployment's provisioning state."""
        with self.loading:
            if deployment not in self.models:
                folder = Path(config["deployments"][deployment]["model_path"])
                try:
                    self.models[deployment] = (load_served(folder), flavor_of(folder))
                except Exception as exc:
                    self._record(deployment, {"state": "Failed", "error": f"{type(exc).__name__}: {exc}"})
                    raise
                self._record(deployment, {"state": "Succeeded"})
            return self.models[deployment]

    def _record(self, deployment: str, outcome: dict[str, str]) -> None:
        """models.json: each deployment's load outcome, with this server's pid (a restarted server starts over)."""
        with self.lock:
            self.outcomes[deployment] = outcome
            write_json(self.folder / MODELS_FILE, {"pid": os.getpid(), "deployments": self.outcomes})


def make_handler(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            if self.path == "/health":  # the pid lets `chatft score` tell this server from a reused port
                return self._reply(200, {"status": "ok", "pid": os.getpid(), "loaded": sorted(endpoint.models)})
            return self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path.split("?")[0] != "/score":
                return self._reply(404, {"error": "not found: POST /score"})
            endpoint.count()
            config = endpoint.config()
            if self.headers.get("Authorization") != f"Bearer {config.get('key')}":
                return self._reply(401, {"error": "missing or wrong key (Authorization: Bearer <key>)"})
            raw = self.read_body(MAX_BODY)  # HttpError: a JSON 4xx, from the base
            deployment = endpoint.route(config, self.headers.get("azureml-model-deployment"))
            model, flavor = endpoint.model(deployment, config)
            messages, parameters = scoring_request(raw, flavor)
            return self._reply(200, {"output": model.answer(messages, parameters)})

    return Handler


class LiveEndpoint(NamedTuple):
    url: str
    config: dict[str, Any]
    """Its endpoint.json."""
    state_dir: Path
    """The state folder it is under (a session there holds the settings of its ledger)."""


def live_endpoints(roots: list[Path], name: str | None = None) -> list[LiveEndpoint]:
    """Every endpoint under these state folders whose server is really up (its pid is alive and GET /health
    answers with that pid), the newest server first."""
    servers = []
    for root in roots:
        for folder in (root / "endpoints").glob("*") if (root / "endpoints").is_dir() else []:
            with contextlib.suppress(OSError, ValueError):
                config, server = read_json(folder / "endpoint.json"), read_json(folder / "server.json")
                if config and server and (name is None or config.get("name") == name):
                    servers.append(((folder / "server.json").stat().st_mtime, server, config, root))
    live = []
    for _, server, config, root in sorted(servers, key=lambda s: s[0], reverse=True):
        if _answers(server):
            live.append(LiveEndpoint(f"http://127.0.0.1:{server['port']}/score", config, root))
    return live


def _answers(server: dict[str, Any]) -> bool:
    try:
        os.kill(int(server["pid"]), 0)
        with urllib.request.urlopen(f"http://127.0.0.1:{int(server['port'])}/health", timeout=2) as response:
            return json.loads(response.read()).get("pid") == server["pid"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


WARM_EVERY = 0.5
"""Seconds between looks for a deployment whose model is not loaded yet."""


def warm(endpoint: Endpoint, stopped: threading.Event) -> None:
    """Load each deployment's model as soon as it is on the endpoint, as Azure ML's scoring container runs its
    init() before the deployment serves: the deployment is provisioned once it is loaded (models.json), so the
    first request (the smoke test) never waits for a LoRA model to load. A model that fails to load fails its
    deployment, and a request to it answers with the error."""
    failed: set[str] = set()
    while not stopped.wait(WARM_EVERY):
        config = endpoint.config()
        for deployment in config.get("deployments") or {}:
            if deployment in endpoint.models or deployment in failed:
                continue
            try:
                endpoint.model(deployment, config)
            except Exception:  # the request that needs it says why
                failed.add(deployment)


def serve(folder: Path) -> None:
    endpoint = Endpoint(folder)
    stopped = threading.Event()
    threading.Thread(target=warm, args=(endpoint, stopped), daemon=True, name="warm").start()
    server = JsonServer(("127.0.0.1", 0), make_handler(endpoint))
    stop = lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    watch_parent(stop)  # the runner was killed: do not outlive it
    write_json(folder / "server.json", {"port": server.server_address[1], "pid": os.getpid()})
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        stopped.set()
        server.server_close()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
