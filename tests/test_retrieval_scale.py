"""The offline stand-in stays fast on big uploads: a lookup's cost and the job's test scoring are bounded by
constants, not by the upload's size (a 40 MB upload took minutes per job: every lookup scanned each context
sharing a common term, and all 8,500 test conversations were scored). Bounds, not timings: the figures are in
bench/local_train.py's domain."""

from __future__ import annotations

from shared.local import train_job
from shared.local.retrieval import POSTINGS_PER_TERM, QUERY_TERMS, RetrievalModel


def chat(user: str, assistant: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def test_no_term_remembers_more_contexts_than_the_bound_and_the_best_match_still_wins() -> None:
    common = [chat(f"weather report number {i} common", f"reply {i}") for i in range(12_000)]  # 'common' in 12,000
    rare = [chat("what is the capital of peru common", "Lima is the capital of Peru.")]
    model = RetrievalModel.train(common + rare + [chat(f"filler {i} other words", "x") for i in range(40_000)])
    assert max(len(p) for p in model._postings.values()) <= POSTINGS_PER_TERM
    scanned = sum(len(model._postings.get(t, ())) for t in ("common", "capital", "peru", "weather", "report"))
    assert scanned <= QUERY_TERMS * POSTINGS_PER_TERM
    assert model.answer([{"role": "user", "content": "capital of Peru?"}]) == "Lima is the capital of Peru."


def test_the_job_scores_at_most_test_limit_conversations_first_ones_first(tmp_path, monkeypatch) -> None:
    """As many as EVAL_SAMPLES can take at most (1000), from the start of the split, as the endpoint's
    evaluation does (shared/flows/evaluation.py read_samples), so the two figures stay comparable."""
    splits = {
        "train": [chat(f"question {i}", f"answer {i}") for i in range(300)],
        # one conversation with nothing held out first: skipped, as the endpoint's evaluation skips it
        "test": [{"messages": [{"role": "user", "content": "no answer"}]}]
        + [chat(f"question {i}", f"answer {i}") for i in range(1_500)],
    }
    monkeypatch.setattr(train_job, "_read_split", lambda uri, containers: splits[uri])
    monkeypatch.setattr(train_job, "_log_epochs", lambda *args: None)
    scored: list[list[dict]] = []
    real = RetrievalModel.evaluate
    monkeypatch.setattr(RetrievalModel, "evaluate", lambda self, rows: scored.append(list(rows)) or real(self, rows))
    job = train_job.Job(tmp_path / "job")
    job.record.update({"data_uris": {"train": "train", "test": "test"}, "datastores": {}})
    metrics = train_job.train(job)
    [test] = scored
    assert len(test) == train_job.TEST_LIMIT == 1000 == metrics["examples"]
    assert test[0] == splits["test"][1] and test[-1] == splits["test"][1000]
