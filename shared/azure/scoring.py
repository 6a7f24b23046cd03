"""The smoke test: one test conversation to the live endpoint, the way the notebook scores it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

PARAMETERS = {"temperature": 0.6, "top_p": 0.9, "do_sample": True, "max_new_tokens": 200}
ANSWER_PREVIEW = 200


class SmokeError(Exception):
    """The endpoint did not answer properly (yet): retried until the deployment deadline."""


@dataclass(frozen=True)
class SmokeResult:
    latency_ms: int
    answer: str


def prompt_messages(conversation: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation up to (not including) its last assistant turn: what the model should answer."""
    messages = [{"role": m["role"], "content": m["content"]} for m in conversation["messages"]]
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()
    return messages


def request_body(messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"input_data": {"input_string": messages, "parameters": dict(PARAMETERS)}, "params": {}}


def extract_answer(payload: Any) -> str:
    """Tolerant: {"output": ...}, a list of records, a bare string, or nested combinations."""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        for key in ("output", "0", "generated_text", "answer", "content"):
            if key in payload:
                return extract_answer(payload[key])
        if len(payload) == 1:
            return extract_answer(next(iter(payload.values())))
        raise SmokeError(f"no answer in a response with keys {sorted(payload)[:5]}")
    if isinstance(payload, list) and payload:
        return extract_answer(payload[0])
    raise SmokeError(f"no answer in a {type(payload).__name__} response")


def score(scoring_uri: str, key: str, deployment: str, messages: list[dict[str, str]], timeout: float) -> SmokeResult:
    """POST with key auth and the azureml-model-deployment header; stdlib only, nothing shared between calls."""
    request = urllib.request.Request(
        scoring_uri,
        data=json.dumps(request_body(messages)).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {key}",
            "azureml-model-deployment": deployment,
        },
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise SmokeError(f"HTTP {exc.code} from the endpoint: {detail}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise SmokeError(f"could not reach the endpoint: {exc}") from exc
    latency_ms = round((time.perf_counter() - started) * 1000)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = body.decode(errors="replace")
    answer = extract_answer(payload).strip()
    if not answer:
        raise SmokeError("the endpoint answered with empty text")
    return SmokeResult(latency_ms, answer[:ANSWER_PREVIEW])
