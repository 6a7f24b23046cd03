"""LOCAL_BASE_MODEL, the model the LoRA trainer fine-tunes: a local Hugging Face model folder, a Hub id, or `tiny`.

The checks (`base_model_problem`, `training_extra_problem`) are cheap, for preflight: they read the file system
and the installed packages' metadata, never import torch. `load` brings the model up for the job.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

TINY = "tiny"
SETTING = "LOCAL_BASE_MODEL"
TRAIN_PACKAGES = ("torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors")
"""What `pip install .[train]` brings (importable names)."""
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_TRUE = {"1", "ON", "YES", "TRUE"}
"""huggingface_hub's true values for HF_HUB_OFFLINE (huggingface_hub/constants.py `_is_true`)."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


class Base(NamedTuple):
    model: Any
    tokenizer: Any
    source: str
    """`tiny`, or the folder / Hub id the model was loaded from (what base.json records)."""
    trained_in_full: tuple[str, ...] = ()
    """Modules trained whole beside the adapters (peft's modules_to_save): tiny's output layer, nothing of a real
    model."""


def training_extra_problem() -> str | None:
    """Why LOCAL_TRAINER=lora cannot run here (the training extra is not installed), or None."""
    missing = [name for name in TRAIN_PACKAGES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return f"LOCAL_TRAINER=lora needs the training extra ({', '.join(missing)} not installed): run make setup-train"


def offline() -> bool:
    return any(os.environ.get(name, "").upper() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _folder_problem(value: str, folder: Path) -> str | None:
    if not folder.is_dir():
        return f"{SETTING} {value}: no model folder there (a Hugging Face model folder, a Hub id, or tiny)"
    names = {path.name for path in folder.iterdir()}
    lacks = []
    if "config.json" not in names:
        lacks.append("config.json")
    if not any(name.endswith(".safetensors") for name in names):
        lacks.append("*.safetensors weights")
    if not names.intersection(TOKENIZER_FILES):
        lacks.append("tokenizer files")
    if lacks:
        return f"{SETTING} {value}: the folder has no {', '.join(lacks)} (download the whole model, e.g. hf download)"
    if "chat_template.jinja" not in names and "chat_template.json" not in names:
        try:
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
        if not isinstance(config, dict) or not config.get("chat_template"):
            return f"{SETTING} {value}: the tokenizer has no chat template (choose an instruct or chat model)"
    return None


def base_model_problem(value: str) -> str | None:
    """Why `value` cannot be the base model, in one line naming LOCAL_BASE_MODEL, or None. A Hub id is checked only
    offline (HF_HUB_OFFLINE=1): then it must be in the Hugging Face cache already."""
    value = value.strip()
    if value == TINY:
        return None
    folder = Path(value).expanduser()
    if folder.exists() or not _HUB_ID.fullmatch(value):
        return _folder_problem(value, folder)
    if not offline() or importlib.util.find_spec("huggingface_hub") is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(value, "config.json"), str):
        return None
    return (
        f"{SETTING} {value}: not in the Hugging Face cache and HF_HUB_OFFLINE forbids downloading it "
        f"(download it once with `hf download {value}`, or name a local model folder)"
    )


def load(value: str, conversations: Sequence[dict[str, Any]], *, seed: int, device: str, dtype: Any) -> Base:
    """The base model and its tokenizer (for `tiny`, built from the conversations); a real model's weights go
    straight to `device` in `dtype`. A model that cannot be loaded is a ValueError naming LOCAL_BASE_MODEL."""
    value = value.strip()
    if value == TINY:
        from shared.local.lora import tiny

        tok = tiny.tokenizer(conversations)
        return Base(tiny.model(tok, seed), tok, TINY, tiny.TRAINED_IN_FULL)
    problem = base_model_problem(value)
    if problem:
        raise ValueError(problem)
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(Path(value).expanduser().resolve()) if Path(value).expanduser().exists() else value
    try:
        tok = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, device_map=device)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:  # what broken files raise
        # (not Exception: the job's Stopped, raised by SIGTERM while loading, must go through as it is)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{SETTING} {value}: cannot load it ({type(exc).__name__}: {first})") from exc
    if not tok.is_fast:  # the assistant turns are found by the fast tokenizers' character offsets
        raise ValueError(f"{SETTING} {value}: its tokenizer has no fast version (tokenizer.json); choose another model")
    if not tok.chat_template:
        raise ValueError(f"{SETTING} {value}: the tokenizer has no chat template (choose an instruct or chat model)")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return Base(model, tok, source)
