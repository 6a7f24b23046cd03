"""The shape of one ultrachat-style conversation, and the normalised row we write for it.

The msgspec types are the *fast path*: msgspec decodes a line into them in C, and a line whose
message types form a clean sequence (`CLEAN_SEQUENCES`) with no whitespace-only turn is valid
with no findings. Every string the fast path accepts is decoded, so it is valid UTF-8, and no
other JSON value (number, nested array, unknown key) can pass it unseen: anything else goes to
the careful checks in `checks.py`, which decide with the same strict JSON rules (orjson) and
name every problem. So the verdict never depends on which field holds a fault.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

ROLES = ("system", "user", "assistant")
TOP_LEVEL_KEYS = frozenset({"messages", "prompt", "prompt_id"})
MESSAGE_KEYS = frozenset({"role", "content"})

_Turn = Annotated[str, msgspec.Meta(min_length=1)]
"""User and assistant turns may not be empty (whitespace-only turns are caught after decoding)."""


class System(msgspec.Struct, forbid_unknown_fields=True, gc=False, tag_field="role", tag="system"):
    """A system prompt; it may be empty."""

    content: str


class User(msgspec.Struct, forbid_unknown_fields=True, gc=False, tag_field="role", tag="user"):
    content: _Turn


class Assistant(msgspec.Struct, forbid_unknown_fields=True, gc=False, tag_field="role", tag="assistant"):
    content: _Turn


Message = System | User | Assistant
"""A chat message exactly as Azure ML's chat-completion preprocessing reads it; encodes as {role, content}."""
MESSAGE_TYPES: dict[str, type[Message]] = {"system": System, "user": User, "assistant": Assistant}  # type: ignore[dict-item]


class Conversation(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A line with only known keys, each of the expected type."""

    messages: list[Message]
    prompt: str = ""
    """A copy of the first user turn in ultrachat; decoded (so checked) but never written."""
    prompt_id: str | None = None


conversation_decoder = msgspec.json.Decoder(Conversation)
_encode = msgspec.json.Encoder().encode

CLEAN_BY_LENGTH: list[list[type] | None] = [
    ([System] if n % 2 else []) + [User, Assistant] * (n // 2) if n >= 2 else None for n in range(129)
]
"""The one clean sequence of message types for each length: an optional system prompt, then
strict user/assistant pairs, ending with the assistant. A list compare is the cheapest check."""


def is_clean_sequence(kinds: list[type]) -> bool:
    """The same rule as CLEAN_BY_LENGTH, for any length."""
    start = 1 if kinds[:1] == [System] else 0
    turns = kinds[start:]
    return (
        len(turns) >= 2
        and len(turns) % 2 == 0
        and all(k is User for k in turns[0::2])
        and all(k is Assistant for k in turns[1::2])
    )


def prepared_row(messages: list[Any], prompt_id: str | None) -> bytes:
    """One normalised output line: compact, only role/content per message, plus the harmless prompt_id."""
    if prompt_id is None:
        return b'{"messages":' + _encode(messages) + b"}\n"
    return b'{"messages":' + _encode(messages) + b',"prompt_id":' + _encode(prompt_id) + b"}\n"
