"""ROME's probability scores on the first CounterFact cases under a few parameter choices.

    KME_TORCH_THREADS=1 .venv/bin/python benchmarks/experiments/rome_ablation.py --n 8 \
        --split train --out benchmarks/results/2026-12-01/rome-ablation.json [--config NAME ...]

Each case is edited, scored (efficacy, paraphrase, neighbourhood: ROME's P(new) vs P(true))
and undone, per configuration; the statistics C are the cached WikiText-2 ones.

Measured 2026-12-01 on the *evaluation* split's first cases (a mistake: parameters are
chosen on the training split): ``results/2026-12-01/rome-ablation.json`` (8 cases) and
``rome-ablation-40.json`` (40 cases), which set Gemma 3's δ clamp to 1.0 ‖h‖. Chosen again
on the training split (``--split train``, the default since): ``results/2026-12-03-b/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

from kme_rag.bench.harness import counterfact_cases
from kme_rag.bench.provenance import provenance
from kme_rag.bench.weights import probability_scores
from kme_rag.settings import Settings
from kme_rag.whitebox.rome import RomeParams
from kme_rag.whitebox.session import WeightEditor, WeightEditParams

CONFIGS = {
    "layer 3, clamp 4.0 (ROME's)": RomeParams(layer=3),
    "layer 4": RomeParams(layer=4),
    "layer 3, clamp 1.0": RomeParams(layer=3, clamp_norm_factor=1.0),
    "layer 3, kl 1.0": RomeParams(layer=3, kl_factor=1.0),
    "layer 3, clamp 2.0": RomeParams(layer=3, clamp_norm_factor=2.0),
    "layer 3, clamp 0.5": RomeParams(layer=3, clamp_norm_factor=0.5),
    "layer 2": RomeParams(layer=2),
}
SPLITS = {"train": "counterfact-train.json", "edit": "counterfact-edit.json"}


def choose(results: dict[str, dict[str, float]]) -> str:
    """The configuration with the highest mean of efficacy, paraphrase and neighbourhood
    scores (ties: the faster)."""
    return max(
        results,
        key=lambda name: (
            round(sum(results[name][k] for k in ("efficacy", "paraphrase", "neighbourhood")), 6),
            -results[name]["seconds_p50"],
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--start", type=int, default=0, help="skip the split's first cases")
    parser.add_argument(
        "--split",
        choices=sorted(SPLITS),
        default="train",
        help="CounterFact split the cases come from: choose parameters on train only",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--config", action="append", choices=sorted(CONFIGS), help="repeatable; default: all"
    )
    args = parser.parse_args()
    configs = {name: CONFIGS[name] for name in (args.config or CONFIGS)}
    settings = Settings()
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    path = settings.data_dir / "counterfact" / SPLITS[args.split]
    cases = counterfact_cases(path, args.start + args.n)[args.start :]
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"kme-ablation-{os.getpid()}"
    results = {}
    for name, rome in configs.items():
        weights = WeightEditor.open(
            settings.model_copy(update={"weights_dir": scratch}),
            params=WeightEditParams(rome=rome),
        )
        scores, seconds = [], []
        for case in cases:
            start = time.perf_counter()
            weights.write([case.edit], "rome")
            seconds.append(time.perf_counter() - start)
            scores.append(probability_scores(weights, case))
            weights.undo()
        results[name] = {
            "params": asdict(rome),
            **{
                k: sum(s[k] for s in scores) / len(scores)
                for k in ("efficacy", "paraphrase", "neighbourhood")
            },
            "seconds_p50": round(statistics.median(seconds), 2),
        }
        print(name, results[name])
    measured = provenance("python benchmarks/experiments/rome_ablation.py")
    measured["machine"]["torch_threads"] = torch.get_num_threads()
    args.out.write_text(
        json.dumps(
            {
                "n": len(cases),
                "start": args.start,
                "split": SPLITS[args.split],
                "configs": results,
                "chosen": choose(results),
                "rule": "highest mean of efficacy, paraphrase, neighbourhood; ties: faster",
                **measured,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
