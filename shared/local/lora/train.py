"""The LoRA fine-tuning job's work: train adapters on LOCAL_BASE_MODEL, log the curves, save and evaluate.

A plain torch loop over peft's LoRA model (AdamW, transformers' learning-rate schedule, gradient clipping), one
epoch after another, with the hyperparameters of Azure ML's finetune step (shared.local.lora.data). The adapters
go on every linear layer of the base ("all-linear", as the QLoRA paper found needed to match full fine-tuning).
After each epoch, train_loss (the epoch's mean per assistant token) and eval_loss (on the validation split,
assistant tokens only) go to metrics.json as MLflow metrics, so a follower sees progress. The loop raises what
SIGTERM raises in the job process (shared.local.train_job Stopped): nothing here catches it.

The test split is scored as RetrievalModel.evaluate scores it (shared.domain.evaluation held_out_pair and
mean_token_f1, against the most common training reply) with greedy decoding, on the first TEST_LIMIT
conversations only: generation is slow on a CPU.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from shared.domain.evaluation import held_out_pair, mean_token_f1
from shared.local.job_log import epoch_line, say
from shared.local.lora import base, data, model, tiny
from shared.local.state import write_json

EVAL_LIMIT = 200
"""Validation conversations measured per epoch, at most (the curves stay cheap on big uploads)."""
TEST_LIMIT = 20
"""Test conversations answered for the job's token F1, at most (greedy generation: seconds each on a CPU)."""
DEFAULT_MAX_SEQ_TOKENS = 2048


class _Pass:
    """One pass over batches: the summed loss per assistant token, and the tokens read."""

    def __init__(self) -> None:
        self.loss, self.targets, self.tokens = 0.0, 0, 0

    def add(self, loss: Any, batch: dict[str, Any]) -> None:
        targets = int((batch["labels"][:, 1:] != data.IGNORE).sum())  # the model shifts labels by one
        self.loss += float(loss.detach()) * targets
        self.targets += targets
        self.tokens += int(batch["attention_mask"].sum())

    def mean(self) -> float | None:
        return round(self.loss / self.targets, 4) if self.targets else None


def _train_pass(peft_model: Any, batches: Iterable[dict[str, Any]], hp: data.Hyperparameters, optimizer, scheduler):
    """One epoch: an optimizer step every gradient_accumulation_steps batches (and after the last)."""
    import torch

    peft_model.train()
    done = _Pass()
    accumulate = max(1, hp.gradient_accumulation_steps)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]

    def step() -> None:
        torch.nn.utils.clip_grad_norm_(trainable, hp.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    pending = 0
    for batch in batches:
        batch = {k: v.to(peft_model.device) for k, v in batch.items()}
        loss = peft_model(**batch).loss
        (loss / accumulate).backward()
        done.add(loss, batch)
        pending += 1
        if pending == accumulate:
            step()
            pending = 0
    if pending:
        step()
    return done


def _eval_pass(peft_model: Any, batches: Iterable[dict[str, Any]]) -> _Pass:
    import torch

    peft_model.eval()
    done = _Pass()
    with torch.no_grad():
        for batch in batches:
            batch = {k: v.to(peft_model.device) for k, v in batch.items()}
            done.add(peft_model(**batch).loss, batch)
    return done


BASELINE_LIMIT = 20_000
"""Conversations the baseline's commonest reply is counted over, at most: the count holds each distinct reply, so it
is capped to keep the job's memory independent of the upload's size."""


def most_common_reply(conversations: Sequence[dict[str, Any]]) -> str:
    """The baseline's one answer: the commonest assistant turn that follows a user turn (as RetrievalModel's), over
    the first BASELINE_LIMIT conversations."""
    replies: Counter[str] = Counter()
    for conversation in itertools.islice(conversations, BASELINE_LIMIT):
        messages = conversation.get("messages") or []
        for index, message in enumerate(messages):
            if message.get("role") == "assistant" and any(m.get("role") == "user" for m in messages[:index]):
                replies[message.get("content") or ""] += 1
    return replies.most_common(1)[0][0] if replies else ""


def evaluate(
    chat: model.LoraChatModel, train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Token F1 of greedy answers on the first TEST_LIMIT servable test conversations, and of the baseline."""
    pairs = [pair for pair in map(held_out_pair, test) if pair is not None][:TEST_LIMIT]
    if not pairs:
        return {"examples": 0, "token_f1": 0.0, "baseline_token_f1": 0.0}
    greedy = {"max_new_tokens": model.DEFAULT_NEW_TOKENS, "do_sample": False}
    _, f1 = mean_token_f1((chat.answer(prompt, greedy), reference) for prompt, reference in pairs)
    fallback = most_common_reply(train)
    _, baseline = mean_token_f1((fallback, reference) for _, reference in pairs)
    return {"examples": len(pairs), "token_f1": round(f1, 4), "baseline_token_f1": round(baseline, 4)}


def train_lora(
    record: dict[str, Any],
    train: Sequence[dict[str, Any]],
    validation: Sequence[dict[str, Any]],
    test: Sequence[dict[str, Any]],
    folder: Path,
) -> dict[str, Any]:
    """Fine-tune, log metrics.json per epoch, save folder/outputs/trained_model, and return the final metrics."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import get_scheduler, set_seed
    from transformers.utils import logging as hf_logging

    started = time.perf_counter()
    hf_logging.disable_progress_bar()  # the job's log is a file, not a terminal
    model.quiet_peft()
    hp = data.Hyperparameters.of(record)
    cap = int(record.get("max_seq_tokens") or DEFAULT_MAX_SEQ_TOKENS)
    set_seed(hp.seed)
    device, dtype = model.device_and_dtype()
    loaded = base.load(
        str(record.get("local_base_model") or base.TINY), train, seed=hp.seed, device=device, dtype=dtype
    )
    say(
        f"base model {loaded.source} on {device}; LoRA r={hp.lora_r} alpha={hp.lora_alpha}, {hp.num_train_epochs} epochs"
    )
    if loaded.source == base.TINY and device == "cpu":
        tiny.use_threads()
    out = folder / "outputs" / "trained_model"
    model.save_base(out, loaded.model, loaded.source)
    if loaded.source != base.TINY:  # a real model: recompute activations in the backward pass instead of keeping them
        loaded.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    loaded.model.config.use_cache = False
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules="all-linear",
        modules_to_save=list(loaded.trained_in_full) or None,
    )
    peft_model = get_peft_model(loaded.model, lora).to(device)
    optimizer = torch.optim.AdamW(
        [p for p in peft_model.parameters() if p.requires_grad], lr=hp.learning_rate, weight_decay=hp.weight_decay
    )
    scheduler = get_scheduler(
        hp.lr_scheduler_type,
        optimizer,
        num_warmup_steps=hp.warmup_steps,
        num_training_steps=data.steps(train, hp) * hp.num_train_epochs,
    )
    held_out = validation[:EVAL_LIMIT]

    def validation_loss() -> float | None:
        return _eval_pass(
            peft_model, data.batches(loaded.tokenizer, held_out, hp.per_device_eval_batch_size, cap)
        ).mean()

    untrained = validation_loss() if held_out else None
    history: list[dict[str, Any]] = []
    train_seconds, train_tokens = 0.0, 0
    for epoch in range(1, hp.num_train_epochs + 1):
        began = time.perf_counter()
        batches = data.batches(
            loaded.tokenizer, train, hp.per_device_train_batch_size, cap, shuffle_seed=hp.seed + epoch
        )
        done = _train_pass(peft_model, batches, hp, optimizer, scheduler)
        seconds = time.perf_counter() - began
        train_seconds += seconds
        train_tokens += done.tokens
        if not done.targets:
            raise ValueError(
                f"no assistant turn starts within the first {cap} tokens of any conversation (MAX_SEQ_TOKENS)"
            )
        values = {"train_loss": done.mean(), "eval_loss": validation_loss() if held_out else None}
        values = {key: value for key, value in values.items() if value is not None}
        now = int(time.time() * 1000)
        history += [{"key": k, "value": v, "timestamp": now, "step": epoch} for k, v in values.items()]
        write_json(folder / "metrics.json", {"step": "epoch", "metrics": history})
        speed = f"{done.tokens / seconds:,.0f} tokens/s" if seconds else ""
        say(epoch_line(epoch, hp.num_train_epochs, values, time=f"trained in {seconds:.1f} s", speed=speed))
    peft_model.eval()
    say(f"evaluating on at most {TEST_LIMIT} test conversations (greedy)")
    metrics = evaluate(model.LoraChatModel(peft_model, loaded.tokenizer, device), train, test)
    metrics |= {
        "device": device if dtype == torch.float32 else f"{device} {str(dtype).removeprefix('torch.')}",
        "untrained_eval_loss": untrained,
        "train_seconds": round(train_seconds, 3),
        "train_tokens": train_tokens,
        "tokens_per_second": round(train_tokens / train_seconds) if train_seconds else 0,
        "train_conversations": len(train),
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    model.save(
        out,
        peft_model,
        loaded.tokenizer,
        {
            "job": record.get("name"),
            "base_model": record.get("base_model"),
            "local_base_model": loaded.source,
            "metrics": metrics,
        },
    )
    return metrics
