"""Benchmark: validator throughput and peak RSS against a raw orjson baseline and pandas.

Generates a ~200 MB ultrachat-like file once (bench/data/, git-ignored), then runs each
contender in its own fresh process so peak RSS is that contender's alone. Reports the best of
`--repeat` runs and the ratio of the validator's throughput to the baseline's, measured in
the same run. Usage: `python -m bench.validate_speed [--size-mb N] [--repeat 3] [--shape ascii|ultrachat|short]`.

Shapes:
- `ascii` (300 MB by default): like real ultrachat_200k, mostly ASCII English: 1-4 user/assistant
  turns, 5-230 words a message, `prompt` and `prompt_id` present, ~3 KB a line.
- `ultrachat` (200 MB): 1-5 turns, ~7 KB a line, 15% with a system prompt; its word list includes
  accented, CJK and emoji words, so most strings are not ASCII (slower for both contenders).
- `short`: ~1.4 M tiny rows, the worst case for per-line work and for memory that grows with lines.

The baseline is the raw orjson line loop (`for line in open(path, "rb"): orjson.loads(line)`);
both contenders' start-up (imports) is outside the timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import time
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"

_WORDS = [
    "the",
    "model",
    "learns",
    "from",
    "each",
    "reply",
    "that",
    "the",
    "assistant",
    "gives",
    "so",
    "a",
    "careful",
    "answer",
    "with",
    "clear",
    "steps",
    "helps",
    "users",
    "understand",
    "why",
    "results",
    "differ",
    "between",
    "runs",
    "data",
    "quality",
    "matters",
    "more",
    "than",
    "volume",
    "café",
    "naïve",
    "résumé",
    "—",
    "“quoted”",
    "数据",
    "模型",
    "训练",
    "über",
    "straße",
    "😊",
    "python",
    "azure",
    "function",
    "endpoint",
    "deploy",
    "token",
    "gradient",
    "learning",
    "rate",
    "schedule",
    "cosine",
    "warmup",
    "epoch",
    "batch",
]


def _text(
    rng: random.Random,
    low: int,
    high: int,
    vocabulary: list[str] = _WORDS,
    ends: tuple[str, ...] = (".", "?", "!", ".\n\n"),
) -> str:
    words = rng.choices(vocabulary, k=rng.randint(low, high))
    sentences, start = [], 0
    while start < len(words):
        end = start + rng.randint(6, 18)
        sentences.append(" ".join(words[start:end]).capitalize() + rng.choice(ends))
        start = end
    return " ".join(sentences)


def make_conversation(rng: random.Random, index: int) -> dict:
    messages = []
    if rng.random() < 0.15:
        messages.append({"role": "system", "content": _text(rng, 8, 30)})
    for _ in range(rng.choice([1, 2, 3, 3, 4, 5])):
        messages.append({"role": "user", "content": _text(rng, 15, 160)})
        messages.append({"role": "assistant", "content": _text(rng, 60, 380)})
    first_user = next(m["content"] for m in messages if m["role"] == "user")
    return {"prompt": first_user, "prompt_id": f"{index:064x}", "messages": messages}


def make_short_conversation(rng: random.Random, index: int) -> dict:
    """Tiny rows: the most lines per MB, so the worst case for per-line state (duplicate check)."""
    return {
        "prompt_id": f"{index:x}",
        "messages": [{"role": "user", "content": f"q{index}"}, {"role": "assistant", "content": _text(rng, 2, 6)}],
    }


_ASCII_WORDS = [w for w in _WORDS if w.isascii()] + [
    "however",
    "which",
    "because",
    "example",
    "there",
    "would",
    "their",
    "could",
    "should",
    "system",
    "about",
    "into",
    "other",
    "these",
    "first",
    "people",
    "number",
    "water",
    "history",
    "important",
]


def _ascii_text(rng: random.Random, low: int, high: int) -> str:
    return _text(rng, low, high, _ASCII_WORDS, (".", "?", "!", ".\n\n", ","))


def make_ascii_conversation(rng: random.Random, index: int) -> dict:
    """Like real ultrachat_200k: English (ASCII), 1-4 turns, 5-300 words a message, ~3 KB a line."""
    messages = []
    for _ in range(rng.randint(1, 4)):
        messages.append({"role": "user", "content": _ascii_text(rng, 5, 60)})
        messages.append({"role": "assistant", "content": _ascii_text(rng, 20, 230)})
    return {"prompt": messages[0]["content"], "prompt_id": f"{rng.getrandbits(256):064x}", "messages": messages}


SHAPES = {"ultrachat": make_conversation, "ascii": make_ascii_conversation, "short": make_short_conversation}


def generate(path: Path, size_mb: int, shape: str, seed: int = 7) -> None:
    rng = random.Random(seed)
    make = SHAPES[shape]
    target = size_mb * 1_000_000
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    written, index = 0, 0
    with tmp.open("wb") as out:
        while written < target:
            line = (json.dumps(make(rng, index), ensure_ascii=False) + "\n").encode()
            out.write(line)
            written += len(line)
            index += 1
    tmp.rename(path)


# name: (imports, timed body). Imports are outside the timing: we measure throughput, not start-up.
CONTENDERS = {
    "orjson-baseline": (
        "import orjson\n",
        "with open(PATH, 'rb') as f:\n    for line in f:\n        orjson.loads(line)\n",
    ),
    "chatft-validator": (
        "from shared.domain.chatdata.validator import validate_stream\n",
        "with open(PATH, 'rb') as f:\n"
        "    report = validate_stream(f, source=PATH)\n"
        "assert report.valid, report.as_dict()['error_totals']\n",
    ),
    "pandas-read_json": (
        "import pandas as pd\n",
        "pd.read_json(PATH, lines=True)\n",
    ),
}

_HARNESS = (
    "import resource, sys, time, json\n"
    "PATH = sys.argv[1]\n"
    "{setup}"
    "t0 = time.perf_counter()\n"
    "{body}"
    "elapsed = time.perf_counter() - t0\n"
    "print(json.dumps({{'seconds': elapsed, 'max_rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))\n"
)


def run_contender(name: str, path: Path) -> dict:
    setup, body = CONTENDERS[name]
    code = _HARNESS.format(setup=setup, body=body)
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=None, help="default: 300 for ascii, 200 otherwise")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="ultrachat")
    args = parser.parse_args()
    if args.size_mb is None:
        args.size_mb = 300 if args.shape == "ascii" else 200
    path = DATA_DIR / f"{args.shape}_like_{args.size_mb}mb.jsonl"
    if not path.exists():
        t = time.perf_counter()
        generate(path, args.size_mb, args.shape)
        print(f"generated {path} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    size_mb = path.stat().st_size / 1e6
    skip_pandas = args.skip_pandas or importlib.util.find_spec("pandas") is None  # `make bench` installs it
    names = [n for n in CONTENDERS if not (skip_pandas and n.startswith("pandas"))]
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for name in names:  # interleaved, so drift in machine load hits every contender alike
            result = run_contender(name, path)
            if name not in best or result["seconds"] < best[name]["seconds"]:
                best[name] = result
    print(f"file: {path.name}, {size_mb:.1f} MB, best of {args.repeat}")
    print(f"{'contender':<18} {'MB/s':>8} {'seconds':>8} {'peak RSS MB':>12}")
    for name in names:
        r = best[name]
        print(f"{name:<18} {size_mb / r['seconds']:>8.1f} {r['seconds']:>8.2f} {r['max_rss_kb'] / 1024:>12.1f}")
    ratio = best["orjson-baseline"]["seconds"] / best["chatft-validator"]["seconds"]
    rss = best["chatft-validator"]["max_rss_kb"] / 1024
    print(f"validator throughput / orjson baseline = {ratio:.2f}x (target >= 0.80)")
    print(f"validator peak RSS = {rss:.1f} MB (target <= 64)")


if __name__ == "__main__":
    main()
