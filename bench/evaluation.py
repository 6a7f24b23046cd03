"""Benchmark: what the evaluation adds before an endpoint goes live, against the local scoring server.

Starts a local endpoint (the real scoring-server process, serving the stand-in model trained on the sample's
first 1,800 conversations), then scores 50 held-out conversations through the evaluation's own scorer and
concurrency (shared.flows.evaluation.score_samples, 4 at a time), best of `--repeat`. Target: at most
slowest answer x 50 / concurrency + 1 s (the requests overlap; only start-up and the last round add).
`--delay-ms` makes every answer take that long (a GPU endpoint's few seconds, scaled down), so the bound is
tested where concurrency matters, not only where answers take milliseconds.
Usage: `python -m bench.evaluation [--repeat 5] [--samples 50] [--delay-ms 0]`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from shared.azure.scoring import score
from shared.domain.evaluation import figures, held_out_pair
from shared.flows.evaluation import CONCURRENCY, Target, score_samples
from shared.local.backend import LocalWorkspace
from shared.local.retrieval import RetrievalModel
from shared.settings import Settings

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chat_sample.jsonl"


def _endpoint(workspace: LocalWorkspace, rows: list[dict]) -> Target:
    RetrievalModel.train(rows).save(workspace.root / "models" / "bench" / "1" / "model", {"job": "bench"})
    workspace.begin_create_endpoint(name="ep-bench", description="bench", tags={"chatft_managed": "true"})
    workspace.begin_create_deployment(
        endpoint="ep-bench", name="demo", model_id="x/models/bench/versions/1", instance_type="Standard_NC24ads_A100_v4"
    )
    workspace.set_endpoint_traffic("ep-bench", {"demo": 100})
    deadline = time.monotonic() + 30
    while (info := workspace.get_endpoint("ep-bench")).provisioning_state != "Succeeded":
        if time.monotonic() > deadline:
            raise SystemExit("the local scoring server did not start in 30 s")
        time.sleep(0.05)
    return Target(info.scoring_uri or "", workspace.endpoint_key("ep-bench"), "demo", "conversations", 30.0)


def _slowed(delay: float):
    """The real scorer, each answer `delay` seconds late (a slower endpoint)."""

    def scorer(*args, **kwargs):
        time.sleep(delay)
        result = score(*args, **kwargs)
        return type(result)(result.latency_ms + round(delay * 1000), result.answer, result.shape)

    return scorer if delay else score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    pairs = [p for p in map(held_out_pair, rows[1800:]) if p is not None][: args.samples]
    scorer = _slowed(args.delay_ms / 1000)
    with tempfile.TemporaryDirectory(prefix="chatft-bench-") as state:
        workspace = LocalWorkspace(Settings.from_env({"ML_BACKEND": "local", "LOCAL_STATE_DIR": state}))
        try:
            target = _endpoint(workspace, rows[:1800])
            score(target.scoring_uri, target.key, target.deployment, pairs[0][0], 30.0, shape=target.shape)  # warm
            best = None
            for _ in range(args.repeat):
                samples = [{"prompt": prompt, "reference": reference} for prompt, reference in pairs]
                started = time.perf_counter()
                score_samples(scorer, target, samples, list(range(len(samples))), budget=3600)
                took = time.perf_counter() - started
                if best is None or took < best[0]:
                    best = (took, samples)
        finally:
            workspace.shutdown()
    assert best is not None
    took, samples = best
    figs = figures(samples)
    slowest = figs["latency_max_ms"] / 1000
    bound = slowest * len(samples) / CONCURRENCY + 1.0
    print(f"{len(samples)} held-out conversations, {CONCURRENCY} at a time, best of {args.repeat}")
    print(f"token F1 {figs['token_f1']:.3f}, p50 {figs['latency_p50_ms']} ms, p95 {figs['latency_p95_ms']} ms")
    print(f"evaluation took          {took:7.3f} s")
    print(f"bound (slowest {slowest * 1000:.0f} ms x {len(samples)} / {CONCURRENCY} + 1 s) {bound:7.3f} s")
    print(f"ratio measured / bound   {took / bound:7.3f}  ({'within' if took <= bound else 'OVER'} the bound)")


if __name__ == "__main__":
    main()
