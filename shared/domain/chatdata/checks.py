"""The careful path: decode one line generically and name every problem with its JSON path.

Only lines the fast path in `schema.py` could not accept come here, so clarity wins over speed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from .issues import Code
from .lines import CR_SEPARATED
from .schema import MESSAGE_KEYS, MESSAGE_TYPES, ROLES, TOP_LEVEL_KEYS, Message

_PREVIEW = 40
KEY_PREVIEW = 60
"""Keys are user data too: a finding names at most this many characters of one."""


PER_LINE = 50
"""Findings kept per line and severity; past that they are only counted, so a line with a
million broken messages costs no more memory than one with fifty."""


class LineFindings(list):  # type: ignore[type-arg]
    """(code, path, message) tuples: the first PER_LINE kept, the rest counted per code in `more`."""

    def __init__(self) -> None:
        super().__init__()
        self.more: Counter[Code] = Counter()

    def append(self, finding: tuple[Code, str, str]) -> None:  # type: ignore[override]
        if len(self) < PER_LINE:
            super().append(finding)
        else:
            self.more[finding[0]] += 1


@dataclass(slots=True)
class LineVerdict:
    """What the careful path found in one line. `messages` is set only when it has no errors."""

    errors: LineFindings = field(default_factory=LineFindings)
    warnings: LineFindings = field(default_factory=LineFindings)
    messages: list[Message] | None = None
    prompt_id: str | None = None
    """Only a string prompt_id is kept (anything else is a warning and left out)."""
    prompt_chars: int = 0
    """Characters of a string `prompt`, left out of the token estimate like the fast path does."""
    layout: str | None = None
    """Another dataset layout the line is in (OTHER_LAYOUTS), which `chatft dataset` converts."""


OTHER_LAYOUTS = {
    "prompt/completion": "OpenAI's legacy prompt/completion pairs",
    "sharegpt": "ShareGPT conversations (from/value, human/gpt)",
}
"""Layouts the validator recognises but does not take; the file gets one hint (Code.OTHER_LAYOUT)."""
SHAREGPT_SPEAKERS = frozenset({"human", "gpt", "chatgpt"})


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, marking a cut with an ellipsis: findings stay readable and bounded."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def preview(value: Any) -> str:
    """A short, safe description of any decoded JSON value (no recursion into containers)."""
    if isinstance(value, list):
        return f"an array of {len(value)} item(s)"
    if isinstance(value, dict):
        return f"an object with {len(value)} key(s)"
    if isinstance(value, str):
        return repr(clip(value, _PREVIEW))
    return clip(repr(value), _PREVIEW)


def json_type(value: Any) -> str:
    """JSON's name for a decoded value's type, as users know it."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def key_path(parent: str, key: str) -> str:
    """A JSON path to a key, clipped: a hostile key can be megabytes long."""
    key = clip(key, KEY_PREVIEW)
    return f"{parent}.{key}" if parent else key


MAX_CONTAINERS = 20_000
MAX_VALUES = 100_000
"""Objects/arrays, and values (counted by commas), one line may hold before the careful path
decodes it: far more than any conversation has messages or words between commas, and they
bound the memory of decoding a hostile line to a few megabytes."""


def decode_line(data: bytes) -> tuple[Any, tuple[Code, str] | None]:
    """Strict JSON decode; on failure return (code, human message) instead of raising."""
    # Brackets and commas inside strings count too: these are upper bounds, and C-speed scans.
    containers, commas = data.count(b"{") + data.count(b"["), data.count(b",")
    if containers > MAX_CONTAINERS or commas > MAX_VALUES:
        return None, (
            Code.LINE_TOO_COMPLEX,
            f"the line has {containers} opening brackets and {commas} commas (limits {MAX_CONTAINERS} and "
            f"{MAX_VALUES}): too many JSON values for one conversation",
        )
    try:
        return orjson.loads(data), None
    except orjson.JSONDecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            return None, (
                Code.INVALID_UTF8,
                f"bytes are not valid UTF-8 at byte {bad.start} of the line ({bad.reason}); "
                "if the file was saved as Windows-1252 or Latin-1, re-save it as UTF-8",
            )
        message = str(exc)
        if "depth limit" in message or "recursion" in message:
            return None, (Code.JSON_TOO_DEEP, f"JSON nests deeper than 1024 levels: {message}")
        if CR_SEPARATED.search(data):
            message += "; the line holds several conversations separated by bare CR (\\r) line endings: use LF"
        return None, (Code.INVALID_JSON, f"not valid JSON: {message}")


def check_conversation(obj: Any, *, strict: bool) -> LineVerdict:
    """Check one decoded line against what Azure ML's chat-completion fine-tuning accepts."""
    verdict = LineVerdict()
    err = verdict.errors.append
    warn = verdict.warnings.append
    if not isinstance(obj, dict):
        hint = (
            "; the line holds a JSON array, but JSON Lines needs one object per line" if isinstance(obj, list) else ""
        )
        err((Code.NOT_AN_OBJECT, "$", f"each line must be a JSON object, got {json_type(obj)}{hint}"))
        return verdict
    for key in sorted(obj.keys() - TOP_LEVEL_KEYS):
        warn(
            (
                Code.UNKNOWN_KEY,
                key_path("", key),
                f"unknown key {clip(key, KEY_PREVIEW)!r} is ignored and not written to the prepared data",
            )
        )
    _check_prompt_fields(obj, verdict)
    if "messages" not in obj:
        err((Code.MESSAGES_MISSING, "messages", "the conversation has no 'messages' list"))
        if "prompt" in obj and "completion" in obj:
            verdict.layout = "prompt/completion"
        elif "conversations" in obj:
            verdict.layout = "sharegpt"
        return verdict
    raw_messages = obj["messages"]
    if not isinstance(raw_messages, list):
        err((Code.MESSAGES_NOT_LIST, "messages", f"'messages' must be a list, got {json_type(raw_messages)}"))
        return verdict
    if len(raw_messages) < 2:
        err(
            (
                Code.TOO_FEW_MESSAGES,
                "messages",
                f"{len(raw_messages)} message(s); Azure ML's preprocessing silently drops conversations with fewer than 2",
            )
        )
    roles: list[str | None] = []
    messages: list[Message] = []
    for index, message in enumerate(raw_messages):
        path = f"messages[{index}]"
        role = _check_message(message, path, verdict)
        roles.append(role)
        if role is not None and isinstance(message.get("content"), str):
            messages.append(MESSAGE_TYPES[role](content=message["content"]))
    _check_roles(roles, strict, verdict)
    if any(_sharegpt_speaker(m) for m in raw_messages):
        verdict.layout = "sharegpt"
    if not verdict.errors:
        verdict.messages = messages
    return verdict


def _sharegpt_speaker(message: Any) -> bool:
    """A ShareGPT message under `messages`: a `from` key, or a human/gpt role."""
    if not isinstance(message, dict):
        return False
    role = message.get("role")
    return "from" in message or (isinstance(role, str) and role.strip().lower() in SHAREGPT_SPEAKERS)


def _check_prompt_fields(obj: dict[str, Any], verdict: LineVerdict) -> None:
    """`prompt` is never written; `prompt_id` is, so it must be a string (or null) in every row.

    A column that is a string in one row and an object in the next breaks the typed loaders
    (pandas, Arrow) that fine-tuning reads the prepared data with.
    """
    prompt, prompt_id = obj.get("prompt"), obj.get("prompt_id")
    if isinstance(prompt, str):
        verdict.prompt_chars = len(prompt)
    if prompt_id is None or isinstance(prompt_id, str):
        verdict.prompt_id = prompt_id
        return
    verdict.warnings.append(
        (
            Code.PROMPT_ID_INVALID,
            "prompt_id",
            f"prompt_id must be a string, got {json_type(prompt_id)} {preview(prompt_id)}; it is left out of the prepared data",
        )
    )


def _check_message(message: Any, path: str, verdict: LineVerdict) -> str | None:
    """Check one message; return its role if the role is valid."""
    err = verdict.errors.append
    if not isinstance(message, dict):
        err((Code.MESSAGE_NOT_OBJECT, path, f"each message must be an object, got {json_type(message)}"))
        return None
    for key in sorted(message.keys() - MESSAGE_KEYS):
        verdict.warnings.append(
            (Code.UNKNOWN_KEY, key_path(path, key), f"unknown message key {clip(key, KEY_PREVIEW)!r} is ignored")
        )
    role = message.get("role")
    if "role" not in message:
        err((Code.ROLE_MISSING, f"{path}.role", "the message has no 'role'"))
        role = None
    elif role not in ROLES:
        err((Code.ROLE_INVALID, f"{path}.role", f"role must be one of system/user/assistant, got {preview(role)}"))
        role = None
    content = message.get("content")
    if "content" not in message:
        err((Code.CONTENT_MISSING, f"{path}.content", "the message has no 'content'"))
    elif not isinstance(content, str):
        err((Code.CONTENT_NOT_STRING, f"{path}.content", f"content must be a string, got {json_type(content)}"))
    elif role in ("user", "assistant") and (not content or content.isspace()):
        err((Code.CONTENT_EMPTY, f"{path}.content", f"{role} content is empty or only whitespace"))
    return role


def _check_roles(roles: list[str | None], strict: bool, verdict: LineVerdict) -> None:
    """Order rules: system only first, at least one assistant, user/assistant alternate, end on assistant."""
    for index, role in enumerate(roles):
        if role == "system" and index > 0:
            verdict.errors.append(
                (Code.SYSTEM_NOT_FIRST, f"messages[{index}].role", "a system message may only come first")
            )
    if not roles or None in roles:
        return  # order checks on an empty list or one with broken messages would only add noise
    if "assistant" not in roles:
        verdict.errors.append(
            (Code.NO_ASSISTANT, "messages", "the conversation has no assistant message to learn from")
        )
        return
    turns = [(index, role) for index, role in enumerate(roles) if role != "system"]
    expected = "user"
    for index, role in turns:
        if role != expected:
            where = "the first turn is from the assistant" if index == turns[0][0] else f"two {role} turns in a row"
            finding = (
                Code.TURNS_NOT_ALTERNATING,
                f"messages[{index}].role",
                f"user/assistant turns do not alternate: {where}",
            )
            (verdict.errors if strict else verdict.warnings).append(finding)
            break
        expected = "assistant" if role == "user" else "user"
    if roles[-1] != "assistant":
        last = len(roles) - 1
        verdict.warnings.append(
            (
                Code.LAST_NOT_ASSISTANT,
                f"messages[{last}].role",
                f"the last message is from the {roles[-1]}, so its reply teaches nothing",
            )
        )
