"""Map the chat columns of public datasets to chatft rows: `{"messages": [{"role", "content"}, ...]}`.

Pure: it sees one column's value per row (plain Python, as `datasets` hands it over) and reads
no files. It maps only names and shapes (ShareGPT `from`/`value` to `role`/`content`, OpenAI
content parts to one string); it never judges a row. Whatever it cannot map it passes through
unchanged, so the project's validator (`validator.py`) rejects that row with its own finding
code (`role-invalid`, `content-not-string`, ...) and there is one rule book, not two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Layout:
    """Which column holds the conversation, and what it looks like."""

    name: str
    """`messages` (role/content: ultrachat_200k, OpenAI), `sharegpt` (from/value) or `prompt_completion`
    (OpenAI's legacy pairs: one user turn, one assistant turn)."""
    column: str
    prompt_column: str = ""
    """`prompt_completion` only: the column of the user turn (`column` holds the assistant's)."""

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column a row is made from."""
        return (self.prompt_column, self.column) if self.prompt_column else (self.column,)


LAYOUTS = (
    Layout("messages", "messages"),
    Layout("sharegpt", "conversations"),
    Layout("messages", "conversation"),
    Layout("prompt_completion", "completion", prompt_column="prompt"),
)
"""Tried in this order: the first column a dataset has decides (ultrachat's `prompt`/`prompt_id`
columns sit beside `messages` and are ignored)."""

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}
"""ShareGPT speakers (matched case-insensitively). Any other (`tool`, `function_call`,
`observation`, ...) is kept as it is, so the validator drops the row as `role-invalid`:
Azure ML's chat-completion format has no tool turns."""

OPENAI_ROLES = {"developer": "system", "human": "user", "gpt": "assistant", "chatgpt": "assistant"}
"""OpenAI's newer name for the system prompt, and ShareGPT's speakers written as roles (exact spelling).
`tool`/`function` turns are kept and so dropped."""


class UnknownLayout(ValueError):
    """No column holds conversations; the message names the columns found."""

    def __init__(self, columns: Iterable[str]) -> None:
        self.columns = tuple(columns)
        found = ", ".join(repr(c) for c in self.columns) or "none"
        super().__init__(
            "no chat column: expected 'messages' (role/content, as in ultrachat_200k or OpenAI chat data), "
            "'conversations' (ShareGPT from/value) or 'prompt' and 'completion' (OpenAI's legacy pairs); "
            f"the columns are: {found}"
        )


def detect_layout(columns: Iterable[str]) -> Layout:
    """The layout of a dataset with these columns, or UnknownLayout."""
    names = list(columns)
    for layout in LAYOUTS:
        if all(c in names for c in layout.columns):
            return layout
    raise UnknownLayout(names)


def chat_row(value: Any) -> dict[str, Any]:
    """One output row from the chat column's value (any layout: each message is mapped by its keys)."""
    return {"messages": _messages(value)}


def layout_row(layout: Layout, values: Mapping[str, Any]) -> dict[str, Any]:
    """One output row from a dataset row's `layout.columns` values: a prompt/completion pair becomes a user
    turn and an assistant turn, as written (OpenAI's separators and leading spaces are left to the data)."""
    if not layout.prompt_column:
        return chat_row(values[layout.column])
    prompt, completion = values[layout.prompt_column], values[layout.column]
    return {
        "messages": [
            {"role": "user", "content": content_text(prompt)},
            {"role": "assistant", "content": content_text(completion)},
        ]
    }


def _messages(value: Any) -> Any:
    if isinstance(value, Mapping):
        value = _rows_of_columns(value)
    if not isinstance(value, (list, tuple)):
        return value  # not a list: the validator names it (`messages-not-list`)
    return [_message(m) for m in value]


def _rows_of_columns(value: Mapping[str, Any]) -> Any:
    """`{"role": [...], "content": [...]}` (an Arrow list of structs read column-wise) as a list of
    messages; any other mapping unchanged."""
    columns = list(value.values())
    if not columns or not all(isinstance(c, (list, tuple)) for c in columns):
        return value
    if len({len(c) for c in columns}) != 1:
        return value
    keys = list(value.keys())
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def _message(message: Any) -> Any:
    if not isinstance(message, Mapping):
        return message  # `message-not-object`
    # An Arrow struct column gives every message every key of the dataset, absent ones as None:
    # a key counts only when it holds a value.
    if message.get("role") is None and message.get("from") is not None:
        return _sharegpt_message(message)
    out: dict[str, Any] = {}
    role = message.get("role")
    if role is not None:
        out["role"] = OPENAI_ROLES.get(role, role) if isinstance(role, str) else role
    if "content" in message:
        out["content"] = content_text(message["content"])
    return out


def _sharegpt_message(message: Mapping[str, Any]) -> dict[str, Any]:
    speaker = message["from"]
    role = SHAREGPT_ROLES.get(speaker.strip().lower(), speaker) if isinstance(speaker, str) else speaker
    out: dict[str, Any] = {"role": role}
    if "value" in message:
        out["content"] = content_text(message["value"])
    return out


def content_text(content: Any) -> Any:
    """A string as it is; OpenAI content parts that are all text, joined by newlines; anything
    else (an image part, a number, None) unchanged, for the validator to reject."""
    if isinstance(content, (list, tuple)) and content:
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and part.get("type") in (None, "text") and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                return content
        return "\n".join(texts)
    return content
