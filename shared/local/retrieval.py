"""The local backend's chat model: retrieval over the training conversations.

For every assistant turn in the train split, the model remembers the context that led to it
(the last user turn, weighted twice, plus earlier user turns) as a TF-IDF vector. Asked a new
conversation, it answers with the reply whose context is most similar (cosine). It genuinely
learns from the data (it can only answer what it was shown), trains in well under a second for
thousands of conversations on one core, needs no weights from a hub, and is easy to evaluate.

Saved in the MLflow model folder layout: an `MLmodel` file plus `artifacts/index.json`, with a
`python_function` flavor whose loader is this module, so the local registry holds the same
artifact shape Azure ML registers (mlflow itself is not needed to write or read it). The MLmodel also
names the Hugging Face flavour a fine-tuned catalog model would have (DEFAULT_FLAVOR), which decides the
request body the local scoring server accepts, as it decides the real one's (shared.local.scoring).
"""

from __future__ import annotations

import json
import math
import re
import sys
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shared.domain.evaluation import held_out_pair, mean_token_f1, token_f1

__all__ = ["RetrievalModel", "flavor_of", "token_f1", "tokens"]
_WORD = re.compile(r"\w+")
ARTIFACT = "artifacts/index.json"
FLAVORS = ("hftransformersv2", "transformers")
DEFAULT_FLAVOR = "hftransformersv2"
"""A fine-tuned model takes its base model's MLmodel flavour (azureml-assets
assets/training/finetune_acft_hf_nlp/src/finetune/finetune.py, `_get_model_flavor`), and the default
FINETUNE_MODEL, Phi-4, is `hftransformersv2` (azureml-assets assets/models/system/Phi-4/MLmodel)."""
MAX_DF = 0.2
"""Terms found in more than this share of training contexts are ignored."""
QUERY_TERMS = 24
"""A query uses only its most distinctive terms."""
POSTINGS_PER_TERM = 2048
"""A term remembers only the contexts it weighs most in, so a lookup costs at most QUERY_TERMS x this, whatever
the upload's size (a 170,000-conversation upload scanned every context sharing a common term: 50 ms a lookup)."""


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def context_terms(messages: list[dict[str, str]]) -> Counter[str]:
    """Term counts of what precedes a reply: the last user turn counts twice."""
    users = [m["content"] for m in messages if m.get("role") == "user"]
    terms: Counter[str] = Counter()
    for position, text in enumerate(users):
        weight = 2 if position == len(users) - 1 else 1
        for term in tokens(text):
            terms[term] += weight
    return terms


def examples(conversations: Iterable[dict[str, Any]]) -> Iterable[tuple[list[dict[str, str]], str]]:
    """(context messages, assistant reply) for every assistant turn that follows a user turn."""
    for conversation in conversations:
        messages = conversation["messages"]
        for index, message in enumerate(messages):
            if message["role"] == "assistant" and any(m["role"] == "user" for m in messages[:index]):
                yield messages[:index], message["content"]


@dataclass
class RetrievalModel:
    replies: list[str]
    vectors: list[dict[str, float]]
    idf: dict[str, float]
    fallback: str

    @classmethod
    def train(cls, conversations: Iterable[dict[str, Any]]) -> RetrievalModel:
        pairs = list(examples(conversations))
        if not pairs:
            raise ValueError("no (user, assistant) turns to learn from")
        contexts = [context_terms(context) for context, _ in pairs]
        df: Counter[str] = Counter(term for terms in contexts for term in terms)
        n = len(contexts)
        # Terms in most contexts carry no signal and make every lookup scan everything: drop them.
        idf = {term: math.log((n + 1) / (count + 1)) + 1.0 for term, count in df.items() if count <= max(2, n * MAX_DF)}
        vectors = [_normalise({t: c * idf[t] for t, c in terms.items() if t in idf}) for terms in contexts]
        replies = [reply for _, reply in pairs]
        fallback = Counter(replies).most_common(1)[0][0]
        return cls(replies, vectors, idf, fallback)

    def __post_init__(self) -> None:
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for doc, vector in enumerate(self.vectors):
            for term, weight in vector.items():
                self._postings.setdefault(term, []).append((doc, weight))
        for postings in self._postings.values():
            if len(postings) > POSTINGS_PER_TERM:  # the heaviest first; ties keep the earlier context
                postings.sort(key=lambda posting: (-posting[1], posting[0]))
                del postings[POSTINGS_PER_TERM:]

    def answer(self, messages: list[dict[str, str]], parameters: dict[str, Any] | None = None) -> str:
        """The reply whose context is most like `messages`; generation `parameters` mean nothing to a lookup."""
        weighted = {t: c * self.idf[t] for t, c in context_terms(messages).items() if t in self.idf}
        query = _normalise(dict(sorted(weighted.items(), key=lambda item: -item[1])[:QUERY_TERMS]))
        scores: dict[int, float] = {}
        for term, weight in query.items():
            for doc, doc_weight in self._postings.get(term, ()):
                scores[doc] = scores.get(doc, 0.0) + weight * doc_weight
        if not scores:
            return self.fallback
        best = max(scores.items(), key=lambda item: (item[1], -item[0]))[0]
        return self.replies[best]

    def evaluate(self, conversations: Iterable[dict[str, Any]]) -> dict[str, float]:
        """Mean token F1 of the model and of the trivial baseline (always the most common reply), one sample per
        conversation exactly as the evaluation of a deployed endpoint takes it (shared.domain.evaluation): the
        last assistant turn, given every turn before it. So the test token F1 the job reports is the figure its
        endpoint's evaluation measures on the same conversations."""
        pairs = [pair for pair in map(held_out_pair, conversations) if pair is not None]
        if not pairs:
            return {"examples": 0, "token_f1": 0.0, "baseline_token_f1": 0.0}
        _, model = mean_token_f1((self.answer(prompt), reference) for prompt, reference in pairs)
        _, baseline = mean_token_f1((self.fallback, reference) for _, reference in pairs)
        return {"examples": len(pairs), "token_f1": round(model, 4), "baseline_token_f1": round(baseline, 4)}

    def save(self, folder: Path, metadata: dict[str, Any], *, flavor: str = DEFAULT_FLAVOR) -> None:
        """MLflow model folder layout: MLmodel + artifacts; `flavor` is one of FLAVORS."""
        if flavor not in FLAVORS:
            raise ValueError(f"flavor {flavor!r} is not one of {', '.join(FLAVORS)}")
        (folder / "artifacts").mkdir(parents=True, exist_ok=True)
        index = {"replies": self.replies, "vectors": self.vectors, "idf": self.idf, "fallback": self.fallback}
        (folder / ARTIFACT).write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
        python = ".".join(map(str, sys.version_info[:3]))
        (folder / "MLmodel").write_text(
            "artifact_path: trained_model\n"
            "flavors:\n"
            "  python_function:\n"
            f"    data: {ARTIFACT}\n"
            "    loader_module: shared.local.retrieval\n"
            f"    python_version: {python}\n"
            "  chatft_retrieval:\n"
            "    version: 1\n"
            f"  {flavor}:\n"
            "    task_type: chat-completion\n"
            f"model_uuid: {uuid.uuid4().hex}\n"
            f"utc_time_created: '{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M:%S.%f')}'\n"
            "metadata:\n" + "".join(f"  {key}: {json.dumps(value)}\n" for key, value in metadata.items()),
            encoding="utf-8",
        )
        (folder / "requirements.txt").write_text("# standard library only\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> RetrievalModel:
        index = json.loads((folder / ARTIFACT).read_text(encoding="utf-8"))
        return cls(index["replies"], index["vectors"], index["idf"], index["fallback"])


def flavor_of(folder: Path) -> str:
    """The model's Hugging Face flavour, from the top-level keys under `flavors:` in its MLmodel (DEFAULT_FLAVOR
    for a model saved before flavours were recorded)."""
    in_flavors = False
    for line in (folder / "MLmodel").read_text(encoding="utf-8").splitlines():
        if not line.startswith(" "):
            in_flavors = line.rstrip() == "flavors:"
        elif in_flavors and line.startswith("  ") and not line.startswith("   ") and line.strip()[:-1] in FLAVORS:
            return line.strip()[:-1]
    return DEFAULT_FLAVOR


def _normalise(vector: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in vector.values()))
    return {t: w / norm for t, w in vector.items()} if norm else {}


def _load_pyfunc(data_path: str) -> RetrievalModel:
    """The python_function flavor's entry point (what mlflow.pyfunc.load_model would call)."""
    return RetrievalModel.load(Path(data_path).parent.parent)
