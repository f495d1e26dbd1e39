"""MEMIT's λ against its probability scores: N CounterFact edits in one batch per λ.

    KME_TORCH_THREADS=1 .venv/bin/python benchmarks/experiments/memit_lambda.py \
        --n 1000 --probe-n 200 \
        --scale 0.25 --scale 4 --out benchmarks/results/2026-12-01/memit-lambda-1000.json

For each λ (the architecture's default times ``--scale``) the first N edits are written in
one MEMIT batch, the first ``--probe-n`` of them scored (efficacy, paraphrase,
neighbourhood: ROME's P(new) vs P(true)), and the batch undone. λ enters only the closed
form, so the δs come from the target cache after the first run (its counts are reported).

Measured 2026-12-01: ``results/2026-12-01/memit-lambda-1000.json`` (no λ meets both
targets; ``results/2026-12-01/NOTES.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from kme_rag.bench.harness import load_cases
from kme_rag.bench.provenance import provenance
from kme_rag.bench.weights import probability_scores
from kme_rag.settings import Settings
from kme_rag.whitebox.session import WeightEditor
from kme_rag.whitebox.targetcache import TargetCacheCounts

SCORES = ("efficacy", "paraphrase", "neighbourhood")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--probe-n", type=int, default=200)
    parser.add_argument("--scale", type=float, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    settings = Settings()
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    cases = load_cases("counterfact", settings.data_dir, args.n, None)
    weights = WeightEditor.open_scratch(settings)  # one model load: λ is read at each write
    default = weights.memit_params()
    runs = []
    for scale in args.scale:
        memit = dataclasses.replace(default, lam=default.lam * scale)
        weights.params = dataclasses.replace(weights.params, memit=memit)
        weights.target_counts = TargetCacheCounts()  # this λ's own counts
        start = time.perf_counter()
        weights.write([c.edit for c in cases], "memit")
        seconds = time.perf_counter() - start
        scores = [probability_scores(weights, c) for c in cases[: args.probe_n]]
        weights.undo()
        run = {
            "lam": memit.lam,
            "scale": scale,
            "layers": list(memit.layers),
            "edits": len(cases),
            "probed": len(scores),
            **{k: round(sum(s[k] for s in scores) / len(scores), 4) for k in SCORES},
            "write_seconds": round(seconds, 1),
            "target_cache": dataclasses.asdict(weights.target_counts),
        }
        print(json.dumps(run), flush=True)
        runs.append(run)
    measured = provenance("python benchmarks/experiments/memit_lambda.py")
    measured["machine"]["torch_threads"] = torch.get_num_threads()
    args.out.write_text(
        json.dumps(
            {
                "default_lam": default.lam,
                "runs": runs,
                **measured,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
