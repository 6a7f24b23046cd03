"""Benchmark: `chatft demo --trainer lora` (what `make run ARGS="--trainer lora"` runs) against the retrieval
stand-in's loop, in one run, on this machine.

Each loop is the real command in a fresh process (its own Azurite and state folder). Printed per trainer: the
training tokens/s and the device (the job's own metrics), the job's wall time (job.json started_at to ended_at:
reading the splits, training, the job's test evaluation, saving) and the whole loop's wall time from the command's
start to the endpoint live (what the demo's stage line says), then the LoRA loop's ratio to the retrieval loop's.
Goal (issue 22): the `tiny` loop live in under 90 s on 2 cores.
Usage: `python -m bench.lora_loop [--sample samples/chat_sample.jsonl] [--lines 0]` (`--lines N`: the sample's
first N conversations only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGE = re.compile(r"✓ (?P<stage>.+?)\s{2,}.*\((?P<seconds>[\d.]+)s\)\s*$")
STATE = re.compile(r"state and logs in (?P<folder>\S+?)\.?\s*$")
GOAL_SECONDS = 90.0


def run_loop(trainer: str, sample: Path) -> dict[str, Any]:
    """One `chatft demo --trainer <trainer>`; its stage times (seconds since its start) and its job's record."""
    env = {**os.environ, "COLUMNS": "400", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    chatft = Path(sys.executable).parent / "chatft"  # the console script `make run` runs
    command = [str(chatft), "demo", "--trainer", trainer, "--sample", str(sample)]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"chatft demo --trainer {trainer} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    stages = {m["stage"].strip(): float(m["seconds"]) for m in map(STAGE.search, done.stdout.splitlines()) if m}
    state = next(m["folder"] for m in map(STATE.search, done.stdout.splitlines()) if m)
    [job] = [json.loads(p.read_text()) for p in (ROOT / state / "jobs").glob("*/job.json")]
    return {"stages": stages, "job": job, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", type=Path, default=ROOT / "samples" / "chat_sample.jsonl")
    parser.add_argument("--lines", type=int, default=0, help="the sample's first N conversations only (0: all)")
    args = parser.parse_args()
    sample = args.sample.resolve()
    with tempfile.TemporaryDirectory() as scratch:
        if args.lines:
            cut = Path(scratch) / f"first-{args.lines}.jsonl"
            cut.write_bytes(b"".join(sample.read_bytes().splitlines(True)[: args.lines]))
            sample = cut
        loops = {trainer: run_loop(trainer, sample) for trainer in ("retrieval", "lora")}
    print(f"sample: {sample.name}, {loops['lora']['job']['metrics']['train_conversations']} train conversations")
    for trainer, loop in loops.items():
        m, job = loop["job"]["metrics"], loop["job"]
        live = loop["stages"].get("endpoint live", float("nan"))
        speed = (
            f"{m['tokens_per_second']:,} tokens/s on {m['device']} ({m['train_tokens']:,} in {m['train_seconds']:.1f} s)"
            if "tokens_per_second" in m
            else f"(no tokens: {m['train_seconds']:.1f} s)"
        )
        print(
            f"{trainer:<9}  training {speed:<48}  job {job['ended_at'] - job['started_at']:6.1f} s  "
            f"loop to live {live:6.1f} s  whole demo {loop['wall']:6.1f} s  test token F1 {m['token_f1']:.2f}"
        )
    lora, base = (loops[t]["stages"].get("endpoint live", float("nan")) for t in ("lora", "retrieval"))
    print(f"lora / retrieval loop to live = {lora / base:.2f}x; goal: lora live in under {GOAL_SECONDS:.0f} s")


if __name__ == "__main__":
    main()
