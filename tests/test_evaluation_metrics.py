"""The evaluation's metrics, by hand and against their reference implementations (issue 20, item 6).

Token F1 is SQuAD's: the SQuAD v2.0 evaluation script's `normalize_answer` and `compute_f1`
(https://worksheets.codalab.org/rest/bundles/0x6b567e1cf2e041ec80d7098f031c5c9e/contents/blob/, also in
huggingface/evaluate metrics/squad_v2/compute_score.py), copied below as the oracle. ROUGE-L is rouge-score's
(google-research/google-research rouge/rouge_scorer.py `_score_lcs`, rouge/tokenize.py `tokenize`; PyPI
rouge-score 0.1.2): compared with it when it is installed (a dev dependency), and always with its LCS table.
"""

from __future__ import annotations

import collections
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.evaluation import (
    cell,
    examples,
    f1_gate,
    figures,
    final_eval_loss,
    held_out_pair,
    lcs_length,
    loss_gate,
    percentile,
    render_evaluation,
    rouge_l,
    rouge_tokens,
    squad_tokens,
    token_f1,
)

# --- the SQuAD v2.0 script, verbatim but for names (the oracle) ---


def _squad_normalize(s: str) -> str:
    def remove_articles(text):
        return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def _squad_f1(a_gold: str, a_pred: str) -> float:
    gold_toks, pred_toks = _squad_normalize(a_gold).split(), _squad_normalize(a_pred).split()
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision, recall = 1.0 * num_same / len(pred_toks), 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def _lcs_table_length(a: list[str], b: list[str]) -> int:
    """rouge-score's `_lcs_table`, the quadratic table."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


# --- by hand ---


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("The capital is Lima.", "the capital is lima", 1.0),
        # reference: capital of peru is lima (5 tokens, "The" dropped); prediction: lima. P 1, R 1/5
        ("Lima", "The capital of Peru is Lima.", 2 * 1 * 0.2 / 1.2),
        # prediction: lima lima (2); reference: lima (1); common 1: P 1/2, R 1
        ("Lima, Lima!", "Lima", 2 * 0.5 * 1 / 1.5),
        ("Paris", "Lima", 0.0),
        ("", "", 1.0),  # SQuAD v2: two answers with no token agree
        ("!!!", "a the", 1.0),  # both normalise to nothing
        ("", "Lima", 0.0),
        ("¿Dónde está?", "dónde está", 1.0),  # Unicode punctuation goes too
    ],
)
def test_token_f1_by_hand(prediction, reference, expected) -> None:
    assert token_f1(prediction, reference) == pytest.approx(expected)


def test_squad_tokens_drop_punctuation_then_articles() -> None:
    assert squad_tokens("The cat's an ANIMAL, a pet.") == ["cats", "animal", "pet"]
    assert squad_tokens("theory and anthem") == ["theory", "and", "anthem"]  # only whole-word articles


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        # reference: the cat sat on the mat (6); prediction: the cat on mat (4); LCS "the cat on mat" = 4
        ("The cat on mat", "the cat sat on the mat", 2 * 1 * (4 / 6) / (1 + 4 / 6)),
        # order matters: LCS of (a b c) and (c b a) is 1
        ("c b a", "a b c", 2 * (1 / 3) * (1 / 3) / (2 / 3)),
        ("x y", "a b", 0.0),
        ("", "a b", 0.0),
        ("don't", "don t", 1.0),  # rouge-score splits on the apostrophe
    ],
)
def test_rouge_l_by_hand(prediction, reference, expected) -> None:
    assert rouge_l(prediction, reference) == pytest.approx(expected)


def test_lcs_by_hand() -> None:
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # the textbook example (CLRS 15.4)
    assert lcs_length([], ["a"]) == 0 and lcs_length(["a"], ["a"]) == 1


def test_percentile_is_nearest_rank() -> None:
    values = [15, 20, 35, 40, 50]
    assert percentile(values, 50) == 35 and percentile(values, 95) == 50 and percentile(values, 5) == 15
    assert percentile(range(1, 101), 95) == 95 and percentile([7], 95) == 7 and percentile([], 50) is None


# --- against the reference implementations ---

ASCII_TEXT = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " \n\t", max_size=60)
WORDS = st.lists(st.sampled_from(["the", "a", "cat", "sat", "on", "mat", "Lima", "is", "an", "x"]), max_size=15)


@settings(max_examples=400, deadline=None)
@given(ASCII_TEXT, ASCII_TEXT)
def test_token_f1_is_the_squad_scripts_on_ascii(prediction, reference) -> None:
    assert token_f1(prediction, reference) == pytest.approx(_squad_f1(reference, prediction))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from("abcde"), max_size=40), st.lists(st.sampled_from("abcde"), max_size=40))
def test_the_bit_parallel_lcs_is_the_table(a, b) -> None:
    assert lcs_length(a, b) == _lcs_table_length(a, b)


def test_a_long_reference_costs_milliseconds() -> None:
    import time

    reference = " ".join(f"w{i % 500}" for i in range(20_000))
    started = time.perf_counter()
    assert rouge_l(reference, reference) == 1.0
    assert time.perf_counter() - started < 1.0  # the quadratic table would take minutes


@settings(max_examples=300, deadline=None)
@given(st.one_of(ASCII_TEXT, WORDS.map(" ".join)), st.one_of(ASCII_TEXT, WORDS.map(" ".join)))
def test_rouge_l_is_rouge_scores_on_ascii(prediction, reference) -> None:
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer", reason="rouge-score is a dev dependency")
    theirs = rouge_scorer.RougeScorer(["rougeL"]).score(reference, prediction)["rougeL"].fmeasure
    assert rouge_l(prediction, reference) == pytest.approx(theirs)


@settings(max_examples=300, deadline=None)
@given(ASCII_TEXT)
def test_rouge_tokens_are_rouge_scores_on_ascii(text) -> None:
    """rouge/tokenize.py, without a stemmer: lower, [^a-z0-9]+ -> space, split, keep ^[a-z0-9]+$."""
    theirs = [t for t in re.split(r"\s+", re.sub(r"[^a-z0-9]+", " ", text.lower())) if re.match(r"^[a-z0-9]+$", t)]
    assert rouge_tokens(text) == theirs


# --- samples, figures, gates, report ---


def test_the_sample_is_the_last_assistant_turn_given_every_turn_before() -> None:
    chat = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "u2"},
            {"role": "assistant", "content": "a2"},
        ]
    }
    prompt, reference = held_out_pair(chat)
    assert [m["content"] for m in prompt] == ["s", "u1", "a1", "u2"] and reference == "a2"
    assert held_out_pair({"messages": [{"role": "user", "content": "u"}]}) is None  # nothing to compare with
    unservable = {"messages": [{"role": "user", "content": "u"}, {"role": "user", "content": "v"}]}
    assert held_out_pair({"messages": [*unservable["messages"], {"role": "assistant", "content": "a"}]}) is None
    assert held_out_pair(None) is None and held_out_pair({"messages": "x"}) is None


def test_figures_count_a_failed_or_empty_answer_as_zero_and_as_a_failure() -> None:
    samples = [
        {"reference": "Lima", "answer": "Lima", "error": None, "latency_ms": 100},
        {"reference": "Lima", "answer": "Paris", "error": None, "latency_ms": 300},
        {"reference": "Lima", "answer": None, "error": "HTTP 503", "latency_ms": None},
        {"reference": "Lima", "answer": "  ", "error": None, "latency_ms": 50},
    ]
    figs = figures(samples)
    assert figs["samples"] == 4 and figs["token_f1"] == 0.25 and figs["rouge_l"] == 0.25
    assert figs["empty_or_failed"] == 2 and figs["empty_or_failed_rate"] == 0.5
    assert (figs["latency_p50_ms"], figs["latency_p95_ms"], figs["latency_max_ms"]) == (100, 300, 300)
    shown = examples(samples)
    assert [e["which"] for e in shown] == ["lowest token F1", "middle token F1", "highest token F1"]
    assert shown[0]["answer"] is None and shown[0]["error"] == "HTTP 503" and shown[-1]["answer"] == "Lima"


def test_the_gates() -> None:
    figs = {"samples": 50, "token_f1": 0.2}
    assert f1_gate(figs, "") is None and f1_gate(figs, 0.2) is None
    assert f1_gate(figs, 0.3) == "token F1 0.200 on 50 held-out conversations is below EVAL_MIN_TOKEN_F1 0.3"
    assert loss_gate(1.2, "") is None and loss_gate(1.2, 1.2) is None and loss_gate(None, 0.5) is None
    assert loss_gate(1.2, 1.0) == "the job's final eval_loss 1.2 is above DEPLOY_MAX_EVAL_LOSS 1"
    assert final_eval_loss({"final": {"loss": 0.4, "eval_loss": 1.2}}) == 1.2
    assert final_eval_loss({"metrics": "metrics unavailable"}) is None and final_eval_loss(None) is None


def test_report_cells_cannot_break_the_table_or_carry_markup() -> None:
    hostile = "a | b\n<script>alert(1)</script> **bold** [link](http://x) `code` " + "x" * 500
    text = cell(hostile)
    assert "\n" not in text and "<script>" not in text and "&lt;script&gt;" in text
    assert "|" not in text.replace("\\|", "") and "\\*\\*bold\\*\\*" in text and "\\[link\\]" in text
    assert len(text) < 260 and text.endswith("…")
    lines = render_evaluation(
        {
            "status": "evaluated",
            "samples": 1,
            "token_f1": 0.5,
            "rouge_l": 0.4,
            "empty_or_failed": 0,
            "empty_or_failed_rate": 0.0,
            "latency_p50_ms": 10,
            "latency_p95_ms": 20,
            "latency_max_ms": 20,
            "examples": [
                {"which": "lowest token F1", "token_f1": 0.5, "prompt": hostile, "reference": "r", "answer": "a"}
            ],
        }
    )
    row = lines[-1]
    assert row.startswith("| lowest token F1 (0.50) | ") and row.count(" | ") == 3 and "\n" not in row
