"""Write samples/chat_sample.jsonl: a small ultrachat-style dataset about running chatft.

ultrachat_200k cannot be downloaded here, so `make run` uses this instead. The rows are built
from a fixed list of facts with several phrasings each, so a model has something to learn and
the file is byte-identical every time it is regenerated: `python samples/make_sample.py`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

SYSTEM = "You are a concise assistant for engineers fine-tuning chat models on Azure Machine Learning."

FACTS: list[tuple[list[str], str]] = [
    (
        [
            "Which foundation model does chatft fine-tune by default?",
            "What is the default base model?",
            "Which model gets fine-tuned if I change nothing?",
        ],
        "By default chatft fine-tunes Phi-3-mini-4k-instruct from the azureml registry; set the model setting to change it.",
    ),
    (
        [
            "What file format does chatft accept?",
            "How should I format my training data?",
            "What does an upload need to look like?",
        ],
        "Upload JSON Lines: one conversation per line, each an object with a messages list of role and content pairs.",
    ),
    (
        ["Which roles may a message have?", "What roles are allowed in messages?", "Can I use a tool role?"],
        "Only system, user and assistant. A system message may appear only first, and every conversation needs an assistant reply.",
    ),
    (
        [
            "How many conversations do I need at least?",
            "What is the minimum dataset size?",
            "Why was my tiny file rejected?",
        ],
        "Azure ML's chat-completion preprocessing needs at least 10 training rows after the split, so upload at least a dozen conversations.",
    ),
    (
        ["How is my data split?", "How are train, validation and test chosen?", "Is the split random?"],
        "Each conversation is assigned by a hash of its content: 90 percent train, 5 validation, 5 test, the same on every machine.",
    ),
    (
        [
            "Where do I find the validation report?",
            "Where is the report written?",
            "How do I see what was wrong with my upload?",
        ],
        "Next to the prepared data in the prepared container: report.md for people and report.json for tools.",
    ),
    (
        ["Does chatft delete my upload?", "Will my original file be changed?", "Is my upload overwritten?"],
        "Never. Uploads are only read; prepared files and reports go to a separate container.",
    ),
    (
        [
            "What happens if I upload the same file twice?",
            "Are duplicate uploads fine-tuned again?",
            "Does re-uploading start another job?",
        ],
        "Identical bytes are recognised by their SHA-256, so the same content is prepared to the same place and submitted once.",
    ),
    (
        [
            "Why do user and assistant turns need to alternate?",
            "What if two user messages follow each other?",
            "Is a non-alternating conversation an error?",
        ],
        "Many chat templates reject non-alternating turns, so chatft warns about them, and rejects them in strict mode.",
    ),
    (
        [
            "How long may a conversation be?",
            "What is the max sequence length?",
            "What happens to very long conversations?",
        ],
        "Conversations over the max sequence length, 4096 tokens by default, are flagged because fine-tuning truncates them.",
    ),
    (
        [
            "Who deletes idle endpoints?",
            "Will my GPU endpoint keep billing forever?",
            "How are unused endpoints removed?",
        ],
        "A janitor timer deletes endpoints chatft created once they have had no requests for the idle window.",
    ),
    (
        ["How do I run chatft without Azure?", "Can I try the loop offline?", "What does make run do?"],
        "make run sets everything up and runs the loop against the embedded local backend, with Azurite as storage.",
    ),
]

FOLLOW_UPS = [
    (
        "Thanks. Is that configurable?",
        "Yes: every behaviour has a setting, listed in the README and local.settings.sample.json.",
    ),
    ("Where is that documented?", "In the README's settings table, next to the command that measures it."),
]


def rows() -> list[dict]:
    out = []
    for fact_index, (questions, answer) in enumerate(FACTS):
        for phrasing, question in enumerate(questions):
            messages = []
            if phrasing == 1:
                messages.append({"role": "system", "content": SYSTEM})
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            if phrasing == 2:
                follow_q, follow_a = FOLLOW_UPS[fact_index % len(FOLLOW_UPS)]
                messages += [{"role": "user", "content": follow_q}, {"role": "assistant", "content": follow_a}]
            prompt_id = hashlib.sha256(question.encode()).hexdigest()
            out.append({"prompt": question, "prompt_id": prompt_id, "messages": messages})
    return out


def main() -> None:
    path = Path(__file__).with_name("chat_sample.jsonl")
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows()), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
