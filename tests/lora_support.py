"""What the LoRA trainer's tests share: the skip mark when the training extra is missing, and small learnable
chat data (templated questions and answers: a 2-layer decoder learns their surface in two epochs)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

needs_train = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("torch", "transformers", "peft")),
    reason="the training extra is not installed (make setup-train)",
)

THINGS = [
    ("lemon", "yellow", "tree"),
    ("plum", "purple", "tree"),
    ("lime", "green", "tree"),
    ("cherry", "red", "tree"),
    ("apple", "red", "tree"),
    ("banana", "yellow", "plant"),
    ("carrot", "orange", "field"),
    ("pea", "green", "field"),
    ("tomato", "red", "garden"),
    ("pumpkin", "orange", "garden"),
    ("grape", "purple", "vine"),
    ("kiwi", "brown", "vine"),
    ("olive", "green", "grove"),
    ("orange", "orange", "grove"),
    ("beet", "purple", "field"),
    ("corn", "yellow", "field"),
    ("radish", "red", "garden"),
    ("onion", "white", "garden"),
    ("melon", "green", "patch"),
    ("squash", "yellow", "patch"),
]
QUESTIONS = [
    ("What colour is a {0}?", "A {0} is {1}."),
    ("Where does a {0} grow?", "A {0} grows in a {2}."),
    ("Tell me the colour of a {0}.", "The colour of a {0} is {1}."),
    ("Is a {0} {1}?", "Yes, a {0} is {1}."),
    ("Which place grows a {0}?", "A {2} grows a {0}."),
]


def qa_conversation(index: int) -> dict[str, Any]:
    """Conversation `index`: one or two templated turns, every fourth with a system prompt."""
    messages = [{"role": "system", "content": "Answer in one short sentence."}] if index % 4 == 0 else []
    for turn in range(1 + index % 2):
        thing = THINGS[(index + 7 * turn) % len(THINGS)]
        question, answer = QUESTIONS[(index // len(THINGS) + turn) % len(QUESTIONS)]
        messages.append({"role": "user", "content": question.format(*thing)})
        messages.append({"role": "assistant", "content": answer.format(*thing)})
    return {"messages": messages}


def qa_conversations(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [qa_conversation(i) for i in range(start, start + n)]


def job_record(**params: Any) -> dict[str, Any]:
    """job.json as the local backend writes it for a LoRA job on `tiny` (what train_lora reads)."""
    return {
        "name": "lora-test-job",
        "base_model": "azureml://registries/azureml/models/Phi-4-mini-instruct/versions/1",
        "local_base_model": "tiny",
        "max_seq_tokens": 256,
        "params": {
            "num_train_epochs": 2,
            "learning_rate": 1e-3,
            "per_device_train_batch_size": 4,
            "per_device_eval_batch_size": 8,
            **params,
        },
    }
