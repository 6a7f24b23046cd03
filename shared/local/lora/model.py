"""A LoRA fine-tuned chat model as an MLflow model folder: saved by the trainer, loaded by the scoring server.

    MLmodel            flavours python_function (loader: this module), chatft_lora, hftransformersv2 (chat-completion)
    requirements.txt   the training extra's packages, at the versions that saved it
    artifacts/adapter/     peft's save_pretrained: adapter_config.json, adapter_model.safetensors
    artifacts/tokenizer/   the base tokenizer (its chat template included)
    artifacts/base/        `tiny` only: the base decoder's config and weights (built per upload, nowhere else)
    artifacts/base.json    otherwise: the base model's folder or Hub id, loaded from there

The adapter is what Azure ML's component saves with merge_lora_weights "false"; merged into the base weights
when loaded here, as that component merges them by default before registering the model.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
import warnings
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from shared.local.lora import tiny
from shared.local.lora.base import TRAIN_PACKAGES

FLAVOR = "chatft_lora"
DEFAULT_NEW_TOKENS = 128
MAX_NEW_TOKENS = 1024
"""A request's max_new_tokens is capped here (generation on a CPU is slow; a server must answer in time)."""


def quiet_peft() -> None:
    """peft 0.21 asks transformers 5 a deprecated question (`is_gradient_checkpointing`) on every model it wraps or
    loads: a FutureWarning that is not ours to answer, kept out of the job's log and the server's output."""
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def device_and_dtype() -> tuple[str, Any]:
    """The GPU when torch sees one (bf16 where it supports it), else the CPU in float32."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return "cpu", torch.float32


def save_base(folder: Path, model: Any, source: str) -> None:
    """What the adapter applies to: `tiny`'s own weights (before LoRA wraps them), or where the base is."""
    artifacts = folder / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    if source == "tiny":
        model.save_pretrained(artifacts / "base")
    else:
        (artifacts / "base.json").write_text(json.dumps({"base_model": source}), encoding="utf-8")


def requirements() -> str:
    lines = []
    for name in TRAIN_PACKAGES:
        try:
            lines.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            lines.append(name)
    return "\n".join(lines) + "\n"


def save(folder: Path, model: Any, tokenizer: Any, metadata: dict[str, Any]) -> None:
    """The adapter, tokenizer, MLmodel and requirements (save_base wrote the base's part)."""
    artifacts = folder / "artifacts"
    model.save_pretrained(artifacts / "adapter")
    tokenizer.save_pretrained(artifacts / "tokenizer")
    python = ".".join(map(str, sys.version_info[:3]))
    (folder / "MLmodel").write_text(
        "artifact_path: trained_model\n"
        "flavors:\n"
        "  python_function:\n"
        "    data: artifacts\n"
        "    loader_module: shared.local.lora.model\n"
        f"    python_version: {python}\n"
        f"  {FLAVOR}:\n"
        "    version: 1\n"
        "  hftransformersv2:\n"
        "    task_type: chat-completion\n"
        f"model_uuid: {uuid.uuid4().hex}\n"
        f"utc_time_created: '{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M:%S.%f')}'\n"
        "metadata:\n" + "".join(f"  {key}: {json.dumps(value)}\n" for key, value in metadata.items()),
        encoding="utf-8",
    )
    (folder / "requirements.txt").write_text(requirements(), encoding="utf-8")


def _number(parameters: dict[str, Any], name: str, default: float, kind: type) -> Any:
    value = parameters.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"parameters.{name} must be a number, got {value!r}")
    return kind(value)


class LoraChatModel:
    """Base + adapter, answering a conversation through the tokenizer's chat template."""

    def __init__(self, model: Any, tokenizer: Any, device: str) -> None:
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self._lock = threading.Lock()  # one generation at a time: memory stays one request's

    @classmethod
    def load(cls, folder: Path) -> LoraChatModel:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        artifacts = folder / "artifacts"
        device, dtype = device_and_dtype()
        tokenizer = AutoTokenizer.from_pretrained(artifacts / "tokenizer")
        if (artifacts / "base").is_dir():
            source: str | Path = artifacts / "base"
            if device == "cpu":
                tiny.use_threads()
        else:
            source = json.loads((artifacts / "base.json").read_text(encoding="utf-8"))["base_model"]
        base = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, device_map=device)
        quiet_peft()
        model = PeftModel.from_pretrained(base, artifacts / "adapter").merge_and_unload()
        return cls(model.to(device).eval(), tokenizer, device)

    def answer(self, messages: list[dict[str, str]], parameters: dict[str, Any]) -> str:
        """The reply to `messages` (the new tokens only, decoded and stripped). Parameters as the Azure chat-completion
        server reads them: max_new_tokens (default DEFAULT_NEW_TOKENS, at most MAX_NEW_TOKENS), do_sample (default
        false: greedy), temperature and top_p when sampling; a temperature of 0 is greedy. A value of the wrong
        type is a ValueError naming it."""
        import torch

        new_tokens = max(1, min(MAX_NEW_TOKENS, _number(parameters, "max_new_tokens", DEFAULT_NEW_TOKENS, int)))
        temperature = _number(parameters, "temperature", 1.0, float)
        top_p = _number(parameters, "top_p", 1.0, float)
        do_sample = parameters.get("do_sample", False)
        if not isinstance(do_sample, bool):
            raise ValueError(f"parameters.do_sample must be true or false, got {do_sample!r}")
        sampling = {"do_sample": False}
        if do_sample and temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": min(1.0, max(top_p, 1e-6))}
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        room = getattr(self.model.config, "max_position_embeddings", None)
        if room and len(ids) + new_tokens > room:  # keep the conversation's end
            ids = ids[-max(1, room - new_tokens) :]
        inputs = torch.tensor([ids], device=self.device)
        with self._lock, torch.no_grad():
            output = self.model.generate(
                input_ids=inputs,
                attention_mask=torch.ones_like(inputs),
                max_new_tokens=new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        return self.tokenizer.decode(output[0, len(ids) :], skip_special_tokens=True).strip()


def _load_pyfunc(data_path: str) -> LoraChatModel:
    """The python_function flavor's entry point (what mlflow.pyfunc.load_model would call)."""
    return LoraChatModel.load(Path(data_path).parent)
