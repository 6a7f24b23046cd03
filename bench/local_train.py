"""Benchmark: the local backend's training job on the 2,000-conversation sample.

Measures, in one run, the time to train and evaluate the retrieval model against a baseline
that only parses the same JSONL (what any job must do at least), best of `--repeat`.
Target: a 2,000-conversation upload trains in under 30 s on 2 CPU cores.
Usage: `python -m bench.local_train [--repeat 5]`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from shared.local.retrieval import RetrievalModel

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chat_sample.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    raw = SAMPLE.read_bytes()
    parse, train = float("inf"), float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        rows = [json.loads(line) for line in raw.splitlines()]
        parse = min(parse, time.perf_counter() - t)
        t = time.perf_counter()
        rows = [json.loads(line) for line in raw.splitlines()]
        model = RetrievalModel.train(rows[:1800])
        metrics = model.evaluate(rows[1800:])
        train = min(train, time.perf_counter() - t)
    print(f"sample: {len(rows)} conversations, {len(raw) / 1e6:.2f} MB, best of {args.repeat}")
    print(f"parse only (baseline)      {parse:7.3f} s")
    print(f"parse + train + evaluate   {train:7.3f} s  ({train / parse:.1f}x the parse; target < 30 s)")
    print(
        f"test token F1 {metrics['token_f1']:.3f} vs {metrics['baseline_token_f1']:.3f} for the most-common-reply baseline"
    )


if __name__ == "__main__":
    main()
