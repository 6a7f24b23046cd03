"""The shape of one ultrachat-style conversation, and the normalised row we write for it.

The msgspec types are the *fast path*: a line that decodes into them (in C) with a clean role
sequence and no empty turn is valid with no findings.
Anything else goes to the careful checks in `checks.py`, which name every problem.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

ROLES = ("system", "user", "assistant")
TOP_LEVEL_KEYS = frozenset({"messages", "prompt", "prompt_id"})
MESSAGE_KEYS = frozenset({"role", "content"})

# An optional system prompt, then strict user/assistant pairs, ending with the assistant.
CLEAN_ROLE_SEQUENCE = re.compile(r"s?(?:ua)+")


class Message(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A chat message exactly as Azure ML's chat-completion preprocessing reads it."""

    role: Literal["system", "user", "assistant"]
    content: str


class Conversation(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A line with only known keys. `prompt` (a copy of the first user turn) is never decoded."""

    messages: Annotated[list[Message], msgspec.Meta(min_length=2)]
    prompt: msgspec.Raw = msgspec.Raw(b"")
    prompt_id: str | None = None


conversation_decoder = msgspec.json.Decoder(Conversation)
_encode = msgspec.json.Encoder().encode


def encoded_size(value: Any) -> int:
    return len(_encode(value)) if value is not None else 0


def prepared_row(messages: list[Message], prompt_id: Any) -> bytes:
    """One normalised output line: compact, only role/content per message, plus the harmless prompt_id."""
    if prompt_id is None:
        return b'{"messages":' + _encode(messages) + b"}\n"
    return b'{"messages":' + _encode(messages) + b',"prompt_id":' + _encode(prompt_id) + b"}\n"
