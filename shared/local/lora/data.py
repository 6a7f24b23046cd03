"""The job's hyperparameters, and its conversations as token batches: the base model's chat template, loss on
the assistant turns only, each example capped at MAX_SEQ_TOKENS, tokenised one batch at a time.

The hyperparameters have the names and defaults of Azure ML's chat_completion_pipeline component
(Azure/azureml-assets assets/training/finetune_acft_hf_nlp/components/pipeline_components/chat_completion/
spec.yaml: num_train_epochs 1, learning_rate 2e-5, per_device_train_batch_size 1, per_device_eval_batch_size 1,
gradient_accumulation_steps 1, lora_r 8, lora_alpha 128, lora_dropout 0.0, seed 42, lr_scheduler_type linear,
warmup_steps 0, weight_decay 0.0, max_grad_norm 1.0), read from the job's params (FINETUNE_OVERRIDES and the
upload's choices, as sent to Azure) where given. The component's other inputs (apply_deepspeed, precision, optim,
max_steps...) describe Azure's cluster or its trainer's options and are not read here.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

IGNORE = -100
"""The label of a token that carries no loss (the `ignore_index` of torch's cross entropy)."""


@dataclass(frozen=True)
class Hyperparameters:
    num_train_epochs: int = 1
    learning_rate: float = 2e-5
    per_device_train_batch_size: int = 1
    per_device_eval_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    lora_r: int = 8
    lora_alpha: int = 128
    lora_dropout: float = 0.0
    seed: int = 42
    lr_scheduler_type: str = "linear"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0

    @classmethod
    def of(cls, record: dict[str, Any]) -> Hyperparameters:
        """The job's params where it has them, the component's defaults elsewhere; a value of the wrong type is a
        ValueError naming it."""
        params = record.get("params") or {}
        values: dict[str, Any] = {}
        for field in fields(cls):
            if params.get(field.name) in (None, ""):
                continue
            kind = type(getattr(cls, field.name))
            try:
                values[field.name] = kind(params[field.name])
            except (TypeError, ValueError) as exc:
                what = {int: "an integer", float: "a number"}.get(kind, "text")
                raise ValueError(f"{field.name} {params[field.name]!r} is not {what}") from exc
        hp = cls(**values)
        small = [
            name
            for name in ("num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size", "lora_r")
            if getattr(hp, name) < 1
        ]
        if small:
            raise ValueError(f"{', '.join(small)} must be at least 1")
        return hp


def encode(tokenizer: Any, messages: list[dict[str, str]], cap: int) -> tuple[list[int], list[int]]:
    """(input ids, labels) of one conversation through the tokenizer's chat template, at most `cap` tokens: the
    labels are the ids on every assistant turn (its text and the template's end-of-turn marker, so the model
    learns to stop) and IGNORE elsewhere. A turn's span is what the template adds after the prompt that asks for
    it (add_generation_prompt); the text is tokenised once, each token labelled by its character offsets."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant" or index == 0:
            continue
        prompt = tokenizer.apply_chat_template(messages[:index], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(messages[: index + 1], tokenize=False)
        if text.startswith(through) and through.startswith(prompt):
            spans.append((len(prompt), len(through)))
        else:  # a template that rewrites earlier turns: the turn's own text, where it is
            start = text.find(message["content"], spans[-1][1] if spans else 0)
            if start >= 0:
                spans.append((start, start + len(message["content"])))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
    ids = encoded["input_ids"][:cap]
    labels = [
        token if any(start <= begin < end for start, end in spans) else IGNORE
        for token, (begin, _) in zip(ids, encoded["offset_mapping"], strict=False)
    ]
    return ids, labels


def batches(
    tokenizer: Any, conversations: Sequence[dict[str, Any]], size: int, cap: int, *, shuffle_seed: int | None = None
) -> Iterator[dict[str, Any]]:
    """Padded tensors (input_ids, attention_mask, labels), `size` conversations at a time, tokenised as they are
    needed (memory holds one batch of tensors, whatever the upload's size); in a seeded order when shuffled."""
    import torch

    order = list(range(len(conversations)))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for first in range(0, len(order), size):
        rows = [encode(tokenizer, conversations[i]["messages"], cap) for i in order[first : first + size]]
        rows = [(ids, labels) for ids, labels in rows if any(label != IGNORE for label in labels[1:])]
        if not rows:
            continue  # no assistant token left under the cap: nothing to learn from this batch
        width = max(len(ids) for ids, _ in rows)
        yield {
            "input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows]),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]),
            "labels": torch.tensor([labels + [IGNORE] * (width - len(labels)) for _, labels in rows]),
        }


def steps(conversations: Sequence[dict[str, Any]], hp: Hyperparameters) -> int:
    """Optimizer steps per epoch, at most (for the learning-rate schedule)."""
    batches = -(-len(conversations) // hp.per_device_train_batch_size)
    return max(1, -(-batches // max(1, hp.gradient_accumulation_steps)))
