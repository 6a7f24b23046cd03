"""The smoke test: one test conversation to the live endpoint, the way the notebook scores it.

The body's `input_string` has two shapes, and which one a deployment reads depends on the MLflow flavour the
fine-tuned model inherits from its base model (azureml-assets mlflow-model-inference/context/
mlflow_score_script.py): an `hftransformersv2` model gets input_data as it came and reads a list of
conversations (the notebook's sample_score.json); for a `transformers` model the server unwraps
input_string and reads one list of messages. The notebook's shape goes first; a refusal (400, or 424 carrying
the model's 4xx) gets the other shape once; the shape that worked is kept (the ledger row's
`deploy["input_shape"]`) and sent alone after that.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import Enum
from typing import Any

PARAMETERS = {"temperature": 0.6, "top_p": 0.9, "do_sample": True, "max_new_tokens": 200}
ANSWER_PREVIEW = 200
"""Characters of the smoke test's answer kept on the ledger row; the evaluation scores whole answers."""


REJECTIONS = frozenset({400, 401, 403, 405, 413, 415, 422})
"""Answers that mean the endpoint refuses this request for good. Not 404 (no deployment with
traffic *yet*), 408 (timeout), 429 (busy) or 5xx: those can pass, so they are retried until the
deadline. Source: "Common error codes for managed online endpoints", MicrosoftDocs azureml-docs,
articles/machine-learning/how-to-troubleshoot-online-endpoints.md."""
MODEL_STATUS_HEADER = "ms-azureml-model-error-statuscode"
"""With a 424, the status the model's own server answered (same page)."""


class InputShape(str, Enum):
    CONVERSATIONS = "conversations"
    """input_string is a list holding the conversation (the notebook's; what an hftransformersv2 model reads)."""
    MESSAGES = "messages"
    """input_string is the conversation's messages (what a transformers model reads once the server unwraps it)."""


class SmokeError(Exception):
    """The endpoint did not answer properly: retried until the deadline, unless `permanent`."""

    def __init__(
        self, message: str, *, status: int | None = None, permanent: bool = False, model_status: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.permanent, self.model_status = status, permanent, model_status

    @property
    def refuses_the_body(self) -> bool:
        """A 400, or a 424 carrying the model server's 4xx: the other request shape may be what it reads."""
        model = (self.model_status or "").strip()
        return self.status == 400 or (self.status == 424 and model.isdigit() and 400 <= int(model) < 500)


def is_rejection(status: int, model_status: str | None) -> bool:
    """A 4xx that retrying cannot fix: the endpoint's own, or a 424 carrying the model server's 4xx."""
    if status == 424:
        return bool(model_status and model_status.strip().isdigit() and int(model_status) in REJECTIONS)
    return status in REJECTIONS


@dataclass(frozen=True)
class SmokeResult:
    latency_ms: int
    answer: str
    shape: InputShape = InputShape.CONVERSATIONS
    """The request shape the endpoint answered."""


def request_body(messages: list[dict[str, str]], shape: InputShape = InputShape.CONVERSATIONS) -> dict[str, Any]:
    strings: list[Any] = [messages] if shape is InputShape.CONVERSATIONS else messages
    return {"input_data": {"input_string": strings, "parameters": dict(PARAMETERS)}, "params": {}}


_DESCRIBED = {
    InputShape.CONVERSATIONS: "as a list holding the conversation",
    InputShape.MESSAGES: "as the list of messages",
}


def known_shape(value: Any) -> InputShape | None:
    """A remembered shape (a ledger value), or None when there is none or it is not one we know."""
    try:
        return InputShape(value) if value else None
    except ValueError:
        return None


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


def score(
    scoring_uri: str,
    key: str,
    deployment: str,
    messages: list[dict[str, str]],
    timeout: float,
    *,
    shape: InputShape | str | None = None,
) -> SmokeResult:
    """Score in the remembered `shape`; with none, the notebook's shape and, if the body is refused, the other once."""
    known = known_shape(shape)
    if known is not None:
        return _post(scoring_uri, key, deployment, messages, timeout, known)
    try:
        return _post(scoring_uri, key, deployment, messages, timeout, InputShape.CONVERSATIONS)
    except SmokeError as first:
        if not first.refuses_the_body:
            raise
        try:
            return _post(scoring_uri, key, deployment, messages, timeout, InputShape.MESSAGES)
        except SmokeError as second:
            if not second.refuses_the_body:
                raise
            raise SmokeError(
                f"the endpoint refused both request bodies: {_DESCRIBED[InputShape.CONVERSATIONS]}: {first}; "
                f"{_DESCRIBED[InputShape.MESSAGES]}: {second}",
                status=second.status,
                permanent=True,
                model_status=second.model_status,
            ) from second


def _post(
    scoring_uri: str, key: str, deployment: str, messages: list[dict[str, str]], timeout: float, shape: InputShape
) -> SmokeResult:
    """POST with key auth and the azureml-model-deployment header; stdlib only, nothing shared between calls."""
    request = urllib.request.Request(
        scoring_uri,
        data=json.dumps(request_body(messages, shape)).encode(),
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
            model_status=model_status,
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
    return SmokeResult(latency_ms, answer, shape)
