"""Builders for small chat datasets (the real ones cannot be downloaded here)."""

from __future__ import annotations

import json
from typing import Any


def conversation(index: int = 0, turns: int = 1, system: bool = False, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": "Be brief."}] if system else []
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {index}.{turn}: how do I tune model {index}?"})
        messages.append(
            {"role": "assistant", "content": f"Answer {index}.{turn}: lower the learning rate for {index}."}
        )
    return {"prompt": messages[-2]["content"], "prompt_id": f"id-{index}", "messages": messages, **extra}


def line(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def jsonl(objs: list[Any]) -> bytes:
    return b"".join(line(o) for o in objs)


def valid_file(n: int = 40, start: int = 0) -> bytes:
    return jsonl([conversation(i, turns=1 + i % 3, system=i % 4 == 0) for i in range(start, start + n)])
