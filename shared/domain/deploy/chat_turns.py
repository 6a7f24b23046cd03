"""What a chat-completion scoring server accepts: an optional system message, then user and
assistant turns strictly alternating, ending with a user turn.

The fine-tuned catalog models are served by an MLflow chat-completion server that renders the
model's Hugging Face chat template, and those templates refuse anything else ("After the optional
system message, conversation roles must alternate user/assistant/user/assistant/...", e.g. the
Mistral and Llama 2 templates). Our validator only *warns* about non-alternating conversations,
so the smoke test must not send one as it is: it sends the longest servable prefix instead.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, str]


def servable_problem(messages: list[Message]) -> str | None:
    """Why a scoring server would refuse these messages, or None if it accepts them."""
    if not messages:
        return "no messages"
    turns = messages[1:] if messages[0].get("role") == "system" else messages
    if not turns:
        return "only a system message"
    for index, message in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.get("role") != expected:
            return f"after the optional system message, roles must alternate user/assistant (turn {index + 1} is {message.get('role')!r})"
    if turns[-1].get("role") != "user":
        return "the last message must be a user turn"
    return None


def smoke_prompt(conversation: Any) -> list[Message] | None:
    """The longest prefix of the conversation a scoring server accepts, ending with a user turn:
    the system message if it comes first, then alternating user/assistant turns up to the first
    that breaks the pattern. If that leaves no user turn, the system message and the first
    non-empty user message. None when the conversation has no user message at all."""
    raw = conversation.get("messages") if isinstance(conversation, dict) else None
    messages = [
        {"role": m["role"], "content": m["content"]}
        for m in (raw if isinstance(raw, list) else [])
        if isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
    ]
    system = messages[:1] if messages and messages[0]["role"] == "system" else []
    turns: list[Message] = []
    for message in messages[len(system) :]:
        expected = "user" if len(turns) % 2 == 0 else "assistant"
        if message["role"] != expected or not message["content"].strip():
            break
        turns.append(message)
    if turns and turns[-1]["role"] == "assistant":
        turns.pop()
    if not turns:
        first_user = next((m for m in messages if m["role"] == "user" and m["content"].strip()), None)
        if first_user is None:
            return None
        turns = [first_user]
    return system + turns
