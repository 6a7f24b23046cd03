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


REJECTIONS = frozenset({400, 401, 403, 405, 413, 415, 422})
"""Answers that mean the endpoint refuses this request for good. Not 404 (no deployment with
traffic *yet*), 408 (timeout), 429 (busy) or 5xx: those can pass, so they are retried until the
deadline. Source: "Common error codes for managed online endpoints", MicrosoftDocs azureml-docs,
articles/machine-learning/how-to-troubleshoot-online-endpoints.md."""
MODEL_STATUS_HEADER = "ms-azureml-model-error-statuscode"
"""With a 424, the status the model's own server answered (same page)."""


class SmokeError(Exception):
    """The endpoint did not answer properly: retried until the deadline, unless `permanent`."""

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.status, self.permanent = status, permanent


def is_rejection(status: int, model_status: str | None) -> bool:
    """A 4xx that retrying cannot fix: the endpoint's own, or a 424 carrying the model server's 4xx."""
    if status == 424:
        return bool(model_status and model_status.strip().isdigit() and int(model_status) in REJECTIONS)
    return status in REJECTIONS


@dataclass(frozen=True)
class SmokeResult:
    latency_ms: int
    answer: str


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
        model_status = exc.headers.get(MODEL_STATUS_HEADER) if exc.headers else None
        model = (
            f" (model answered {model_status}: {exc.headers.get('ms-azureml-model-error-reason')})"
            if model_status
            else ""
        )
        raise SmokeError(
            f"HTTP {exc.code} from the endpoint{model}: {detail}",
            status=exc.code,
            permanent=is_rejection(exc.code, model_status),
        ) from exc
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
