"""The model a local deployment serves, loaded by its MLmodel flavour: `chatft_lora` is base + LoRA adapter
(shared.local.lora.model, which imports torch when it loads), anything else the retrieval stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from shared.local.retrieval import RetrievalModel

LORA_FLAVOR = "chatft_lora"


class ServedModel(Protocol):
    def answer(self, messages: list[dict[str, str]], parameters: dict[str, Any]) -> str:
        """The assistant's reply to `messages`, generated with the request's `parameters` (max_new_tokens,
        temperature, top_p, do_sample, as Azure's chat-completion scoring server reads them)."""
        ...


def flavors(folder: Path) -> set[str]:
    """The flavour names under `flavors:` in the model folder's MLmodel."""
    names, inside = set(), False
    for line in (folder / "MLmodel").read_text(encoding="utf-8").splitlines():
        if not line.startswith(" "):
            inside = line.rstrip() == "flavors:"
        elif inside and line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            names.add(line.strip()[:-1])
    return names


def load_served(folder: Path) -> ServedModel:
    if LORA_FLAVOR in flavors(folder):
        from shared.local.lora.model import LoraChatModel

        return LoraChatModel.load(folder)
    return RetrievalModel.load(folder)
