"""Benchmark: the local backend's training job on the 2,000-conversation sample.

Measures, in one run, the time to train and evaluate the retrieval model against a baseline
that only parses the same JSONL (what any job must do at least), best of `--repeat`.
Target: a 2,000-conversation upload trains in under 30 s on 2 CPU cores.
`--big N` also builds N conversations from the sample (an eighth of each turn's words replaced at random, so
they differ) and reports the lookup cost at that size against the sample's: the postings bound keeps it flat.
Usage: `python -m bench.local_train [--repeat 5] [--big 150000]`.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from shared.local.retrieval import RetrievalModel

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chat_sample.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big", type=int, default=0, help="also measure lookups on this many conversations")
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
    if args.big:
        small = lookup_ms(rows[:1800], rows[1800:])
        big_rows = varied(rows, args.big)
        cut = int(len(big_rows) * 0.9)
        big = lookup_ms(big_rows[:cut], big_rows[cut : cut + 200])
        print(f"lookup on {1800:,} conversations  {small:6.2f} ms")
        print(f"lookup on {cut:,} conversations  {big:6.2f} ms  ({big / small:.1f}x for {cut / 1800:.0f}x the data)")


def varied(rows: list[dict], n: int) -> list[dict]:
    rnd = random.Random(1)
    out = []
    for i in range(n):
        messages = []
        for m in rows[i % len(rows)]["messages"]:
            words = m["content"].split() or [""]
            for _ in range(max(1, len(words) // 8)):
                words[rnd.randrange(len(words))] = f"w{rnd.randrange(50_000)}"
            messages.append({"role": m["role"], "content": " ".join(words)})
        out.append({"messages": messages})
    return out


def lookup_ms(train: list[dict], test: list[dict]) -> float:
    model = RetrievalModel.train(train)
    t = time.perf_counter()
    model.evaluate(test)
    return (time.perf_counter() - t) * 1000 / max(1, len(test))


if __name__ == "__main__":
    main()
