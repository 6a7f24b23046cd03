"""How well an endpoint answers held-out conversations: the samples, the metrics, the figures and the report
section, with no I/O.

One sample per conversation of the upload's test split: the prompt is every turn before the last assistant
turn, the reference is that turn (a prompt a chat-completion server would refuse is skipped, see
shared.domain.deploy.chat_turns). Two metrics, each defined as its reference implementation defines it:

- token F1, SQuAD-style (the SQuAD v2.0 evaluation script, `normalize_answer` and `compute_f1`): lower-case,
  punctuation removed (ASCII's, as SQuAD, and Unicode's), the English articles a/an/the removed, split on
  whitespace, then the F1 of the two bags of tokens; two texts with no token at all score 1, one of them 0.
- ROUGE-L F-measure as `rouge-score` computes it (google-research/google-research rouge/rouge_scorer.py
  `_score_lcs`, tokenize.py): lower-case, every run of non-alphanumerics a separator, then the longest common
  subsequence of the two token lists as precision (of the answer) and recall (of the reference); 0 when
  either has no token. On ASCII text the tokens are rouge-score's; other scripts keep their letters.

An answer that failed (an error, or empty text) scores 0 on both and counts in the failure rate. Latency
percentiles are nearest-rank over the answers that came back.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from shared.domain.deploy.chat_turns import Message, servable_problem

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ALNUM_RUN = re.compile(r"[^\W_]+")
_ASCII_PUNCTUATION = frozenset(string.punctuation)
EXAMPLES = 3
"""Examples shown in the report: the lowest, the middle and the highest token F1."""
CELL_MAX = 160
"""Characters of a prompt, reference or answer shown in report.md's examples table."""
TEXT_KEEP = 2000
"""Characters of a prompt, reference or answer kept in the results (the metrics use the whole text)."""


# --- the metrics ---


def _punctuation(ch: str) -> bool:
    return ch in _ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def squad_tokens(text: str) -> list[str]:
    """SQuAD's `normalize_answer`, then split: lower, punctuation out, articles out, whitespace collapsed."""
    lowered = "".join(ch for ch in text.lower() if not _punctuation(ch))
    return _ARTICLES.sub(" ", lowered).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD v2.0's `compute_f1` on squad_tokens: the F1 of the common tokens (with multiplicity)."""
    predicted, expected = squad_tokens(prediction), squad_tokens(reference)
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokens (no stemming): lower-case runs of letters and digits."""
    return _ALNUM_RUN.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Allison and Dix 1986; Hyyro 2004): one
    big-integer step per token of `b`, so a long reference costs milliseconds, not a quadratic table."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(prediction: str, reference: str) -> float:
    """rouge-score's rougeL F-measure of `prediction` against `reference`."""
    predicted, expected = rouge_tokens(prediction), rouge_tokens(reference)
    if not predicted or not expected:
        return 0.0
    lcs = lcs_length(expected, predicted)
    if not lcs:
        return 0.0
    precision, recall = lcs / len(predicted), lcs / len(expected)
    return 2 * precision * recall / (precision + recall)


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least p% of the values at or below it); None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# --- the samples ---


def held_out_pair(conversation: Any) -> tuple[list[Message], str] | None:
    """(prompt, reference): every turn before the last assistant turn, and that turn's text. None when there is
    no assistant turn, or the prompt is not one a chat-completion server accepts."""
    raw = conversation.get("messages") if isinstance(conversation, dict) else None
    if not isinstance(raw, list):
        return None
    messages = [m for m in raw if isinstance(m, dict)]
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "assistant"), None)
    if last is None or not isinstance(messages[last].get("content"), str):
        return None
    prompt = [{"role": m.get("role"), "content": m.get("content")} for m in messages[:last]]
    if not all(isinstance(m["role"], str) and isinstance(m["content"], str) for m in prompt):
        return None
    if servable_problem(prompt) is not None:  # type: ignore[arg-type]  # checked just above
        return None
    return prompt, messages[last]["content"]  # type: ignore[return-value]


def mean_token_f1(pairs: Iterable[tuple[str, str]]) -> tuple[int, float]:
    """(count, mean token F1) of (answer, reference) pairs: what the local trainer reports as its test token F1
    and what the evaluation of its endpoint measures (one definition, so the two agree)."""
    scores = [token_f1(answer, reference) for answer, reference in pairs]
    return len(scores), (sum(scores) / len(scores) if scores else 0.0)


# --- the figures ---


def scored(sample: dict[str, Any]) -> dict[str, Any]:
    """A sample with its answer's metrics (0 for a failed or empty answer)."""
    answer, reference = sample.get("answer"), str(sample.get("reference") or "")
    ok = isinstance(answer, str) and bool(answer.strip()) and not sample.get("error")
    return {
        **sample,
        "ok": ok,
        "token_f1": token_f1(answer, reference) if ok else 0.0,  # type: ignore[arg-type]
        "rouge_l": rouge_l(answer, reference) if ok else 0.0,  # type: ignore[arg-type]
    }


def figures(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The evaluation's figures over finished samples (each: reference, answer or error, latency_ms)."""
    rows = [scored(s) for s in samples]
    n = len(rows)
    failed = sum(not r["ok"] for r in rows)
    latencies = [float(r["latency_ms"]) for r in rows if r["ok"] and r.get("latency_ms") is not None]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    return {
        "samples": n,
        "token_f1": round(sum(r["token_f1"] for r in rows) / n, 4) if n else None,
        "rouge_l": round(sum(r["rouge_l"] for r in rows) / n, 4) if n else None,
        "empty_or_failed": failed,
        "empty_or_failed_rate": round(failed / n, 4) if n else None,
        "latency_p50_ms": None if p50 is None else round(p50),
        "latency_p95_ms": None if p95 is None else round(p95),
        "latency_max_ms": round(max(latencies)) if latencies else None,
    }


def examples(samples: Sequence[dict[str, Any]], count: int = EXAMPLES) -> list[dict[str, Any]]:
    """The samples with the lowest, middle and highest token F1 (ties: a failed answer first, then the earlier),
    for the report."""
    rows = sorted(enumerate(scored(s) for s in samples), key=lambda pair: (pair[1]["token_f1"], pair[1]["ok"], pair[0]))
    if not rows:
        return []
    picks = sorted({0, len(rows) // 2, len(rows) - 1})[:count]
    labels = {0: "lowest token F1", len(rows) // 2: "middle token F1", len(rows) - 1: "highest token F1"}
    out = []
    for index in picks:
        row = rows[index][1]
        prompt = row.get("prompt") or []
        last_user = next((m.get("content") for m in reversed(prompt) if m.get("role") == "user"), "")
        out.append(
            {
                "which": labels[index],
                "prompt": str(last_user)[:TEXT_KEEP],
                "turns": len(prompt),
                "reference": str(row.get("reference") or "")[:TEXT_KEEP],
                "answer": str(row.get("answer") or "")[:TEXT_KEEP] if row["ok"] else None,
                "error": None if row["ok"] else str(row.get("error") or "empty answer")[:300],
                "token_f1": round(row["token_f1"], 4),
            }
        )
    return out


def summary_line(figs: dict[str, Any] | None) -> str:
    """'token F1 0.62, ROUGE-L 0.58, p50 40 ms, p95 120 ms, 1 of 50 empty or failed': status and the demo."""
    if not figs or not figs.get("samples"):
        return ""
    p50, p95 = figs.get("latency_p50_ms"), figs.get("latency_p95_ms")
    return (
        f"token F1 {figs['token_f1']:.3f}, ROUGE-L {figs['rouge_l']:.3f}, "
        f"p50 {'-' if p50 is None else p50} ms, p95 {'-' if p95 is None else p95} ms, "
        f"{figs['empty_or_failed']} of {figs['samples']} empty or failed"
    )


# --- the gates ---


def f1_gate(figs: dict[str, Any] | None, minimum: float | str) -> str | None:
    """Why the endpoint must not go live (its token F1 is below EVAL_MIN_TOKEN_F1), or None."""
    if minimum in ("", None) or not figs or figs.get("token_f1") is None:
        return None
    if figs["token_f1"] >= float(minimum):
        return None
    return (
        f"token F1 {figs['token_f1']:.3f} on {figs['samples']} held-out conversations is below "
        f"EVAL_MIN_TOKEN_F1 {float(minimum):g}"
    )


def final_eval_loss(training: Any) -> float | None:
    """The job's last eval_loss, from the report's Training section (`final`), when it was read."""
    final = training.get("final") if isinstance(training, dict) else None
    value = final.get("eval_loss") if isinstance(final, dict) else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def loss_gate(eval_loss: float | None, maximum: float | str) -> str | None:
    """Why the model must not be deployed (its final eval_loss is above DEPLOY_MAX_EVAL_LOSS), or None."""
    if maximum in ("", None) or eval_loss is None or eval_loss <= float(maximum):
        return None
    return f"the job's final eval_loss {eval_loss:g} is above DEPLOY_MAX_EVAL_LOSS {float(maximum):g}"


# --- report.md ---


def cell(text: Any, limit: int = CELL_MAX) -> str:
    """Text safe in one Markdown table cell: one line, cut to `limit`, no markup or HTML of its own."""
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|#!~])", r"\\\1", flat)


def render_evaluation(d: dict[str, Any]) -> list[str]:
    """report.md's "Evaluation" section from the report.json section."""
    out = ["", "## Evaluation", "", f"- Status: **{d.get('status')}**"]
    for key in ("what", "progress", "note"):
        if d.get(key):
            out.append(f"- {str(d[key])[0].upper()}{str(d[key])[1:]}")
    if d.get("samples"):
        out += [
            f"- Token F1: {d['token_f1']:.3f} (SQuAD-style), ROUGE-L: {d['rouge_l']:.3f} (F-measure)",
            f"- Empty or failed answers: {d['empty_or_failed']} of {d['samples']} ({d['empty_or_failed_rate']:.0%})",
            f"- Latency: p50 {d.get('latency_p50_ms', '-')} ms, p95 {d.get('latency_p95_ms', '-')} ms, "
            f"slowest {d.get('latency_max_ms', '-')} ms",
        ]
    if d.get("gate"):
        out.append(f"- Gate: {d['gate']}")
    rows = d.get("examples") or []
    if rows:
        out += ["", "| example | prompt (last user turn) | reference | answer |", "|---|---|---|---|"]
        for row in rows:
            answer = row["answer"] if row.get("answer") is not None else f"(failed: {row.get('error')})"
            out.append(
                f"| {row['which']} ({row['token_f1']:.2f}) | {cell(row['prompt'])} | {cell(row['reference'])} "
                f"| {cell(answer)} |"
            )
    return out
