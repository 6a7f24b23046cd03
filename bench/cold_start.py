"""Benchmark: cold-start cost of `import function_app` against `import azure.functions`.

Each import runs in a fresh interpreter, interleaved, `--runs` times; the median of each is
compared in the same run. Target: ratio <= 3x. Usage: `python -m bench.cold_start [--runs 15]`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def time_import(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    for module in ("azure.functions", "function_app"):  # warm the .pyc caches; not measured
        time_import(module)
    samples: dict[str, list[float]] = {"azure.functions": [], "function_app": []}
    for _ in range(args.runs):
        for module in samples:
            samples[module].append(time_import(module))
    base, app = (statistics.median(samples[m]) for m in samples)
    print(f"import azure.functions  median {base * 1000:6.1f} ms over {args.runs} fresh interpreters")
    print(f"import function_app     median {app * 1000:6.1f} ms")
    print(f"function_app / azure.functions = {app / base:.2f}x (target <= 3.00)")


if __name__ == "__main__":
    main()
