"""The pure column mapping of `chatft dataset` (shared/domain/chatdata/layouts.py).

Each mapped row is also run through the validator's careful check, because the mapping's job is
to hand the validator rows it can judge: valid ones accepted, unmappable ones named by its codes.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.chatdata.checks import check_conversation
from shared.domain.chatdata.issues import Code
from shared.domain.chatdata.layouts import UnknownLayout, chat_row, content_text, detect_layout


def verdict_codes(row: dict[str, Any]) -> set[Code]:
    return {code for code, _, _ in check_conversation(row, strict=False).errors}


def test_ultrachat_columns_pick_messages_and_ignore_prompt_columns() -> None:
    layout = detect_layout(["prompt", "prompt_id", "messages"])
    assert (layout.name, layout.column) == ("messages", "messages")


def test_sharegpt_columns_pick_conversations() -> None:
    layout = detect_layout(["id", "conversations"])
    assert (layout.name, layout.column) == ("sharegpt", "conversations")


def test_messages_wins_over_conversations() -> None:
    assert detect_layout(["conversations", "messages"]).column == "messages"


def test_unknown_layout_names_every_column() -> None:
    with pytest.raises(UnknownLayout) as caught:
        detect_layout(["text", "label"])
    assert "'text', 'label'" in str(caught.value)
    assert "messages" in str(caught.value) and "conversations" in str(caught.value)
    assert caught.value.columns == ("text", "label")


def test_unknown_layout_with_no_columns() -> None:
    with pytest.raises(UnknownLayout, match="the columns are: none"):
        detect_layout([])


def test_ultrachat_row_maps_unchanged() -> None:
    messages = [{"content": "hi", "role": "user"}, {"content": "hello", "role": "assistant"}]
    row = chat_row(messages)
    assert row == {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    assert verdict_codes(row) == set()


def test_sharegpt_speakers_map_to_roles() -> None:
    value = [
        {"from": "system", "value": "be brief"},
        {"from": "human", "value": "hi"},
        {"from": "gpt", "value": "hello"},
        {"from": "Human", "value": "again"},
        {"from": "chatgpt", "value": "sure"},
    ]
    row = chat_row(value)
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert [m["content"] for m in row["messages"]] == ["be brief", "hi", "hello", "again", "sure"]
    assert verdict_codes(row) == set()


def test_unknown_sharegpt_speaker_is_kept_so_the_validator_drops_the_row() -> None:
    row = chat_row([{"from": "human", "value": "hi"}, {"from": "function_call", "value": "{}"}])
    assert row["messages"][1]["role"] == "function_call"
    assert Code.ROLE_INVALID in verdict_codes(row)


def test_arrow_struct_with_both_key_sets_uses_the_filled_one() -> None:
    """An Arrow list of structs gives every message every key; absent ones are None."""
    value = [
        {"role": None, "content": None, "from": "human", "value": "hi"},
        {"role": None, "content": None, "from": "gpt", "value": "hello"},
    ]
    assert chat_row(value) == {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    }


def test_openai_developer_is_the_system_prompt_and_extra_keys_go() -> None:
    value = [
        {"role": "developer", "content": "be brief", "name": None},
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "assistant", "content": "hello", "tool_calls": None},
    ]
    row = chat_row(value)
    assert row["messages"][0] == {"role": "system", "content": "be brief"}
    assert all(set(m) == {"role", "content"} for m in row["messages"])
    assert verdict_codes(row) == set()


def test_openai_tool_turns_and_null_content_are_rejected_by_the_validator() -> None:
    row = chat_row(
        [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None},
            {"role": "tool", "content": "sunny"},
            {"role": "assistant", "content": "sunny"},
        ]
    )
    assert {Code.ROLE_INVALID, Code.CONTENT_NOT_STRING} <= verdict_codes(row)


def test_text_content_parts_join_and_other_parts_stay() -> None:
    assert content_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "a\nb"
    assert content_text([{"type": None, "text": "a", "image_url": None}]) == "a"
    image = [{"type": "image_url", "image_url": {"url": "x"}}]
    assert content_text(image) is image
    assert content_text([]) == []
    assert content_text(7) == 7


def test_column_wise_messages_become_rows() -> None:
    value = {"role": ["user", "assistant"], "content": ["hi", "hello"]}
    assert chat_row(value) == {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    }


def test_ragged_column_wise_mapping_is_left_for_the_validator() -> None:
    value = {"role": ["user", "assistant"], "content": ["hi"]}
    row = chat_row(value)
    assert row["messages"] is value
    assert Code.MESSAGES_NOT_LIST in verdict_codes(row)


@pytest.mark.parametrize("value", [None, 5, "a string", 1.5])
def test_not_a_list_is_left_for_the_validator(value: Any) -> None:
    row = chat_row(value)
    assert row == {"messages": value}
    assert Code.MESSAGES_NOT_LIST in verdict_codes(row)


def test_non_object_messages_and_missing_keys_are_left_for_the_validator() -> None:
    row = chat_row(["hi", {"content": "hello"}, {"role": "assistant"}, {"from": "gpt"}])
    assert row["messages"] == ["hi", {"content": "hello"}, {"role": "assistant"}, {"role": "assistant"}]
    codes = verdict_codes(row)
    assert {Code.MESSAGE_NOT_OBJECT, Code.ROLE_MISSING, Code.CONTENT_MISSING} <= codes


def test_the_module_is_pure() -> None:
    import ast
    from pathlib import Path

    import shared.domain.chatdata.layouts as layouts

    tree = ast.parse(Path(layouts.__file__).read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "collections", "dataclasses", "typing"}
