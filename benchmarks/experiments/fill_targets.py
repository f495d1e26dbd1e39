"""Optimise the δs of a slice of a benchmark's edits into the target cache, writing nothing.

    KME_TORCH_THREADS=1 .venv/bin/python benchmarks/experiments/fill_targets.py \
        --dataset counterfact --start 200 --stop 1000 [--method memit]

A large MEMIT batch spends nearly all its time optimising one δ per edit; each δ depends
only on the unedited weights and its own edit, so slices run in separate processes (one
per core) fill the cache, and the later `kme bench counterfact --method memit --n 1000
--edits all` reads them back (its result JSON counts them under `target_cache.reused`).

Run on 2026-12-01 (two slices, one per core) to fill MEMIT-1000's δs: logs in
``results/2026-12-01/fill-targets-*.log``, story in ``results/2026-12-01/NOTES.md``.
"""

from __future__ import annotations

import argparse
import time

import torch

from kme_rag.bench.harness import load_cases
from kme_rag.settings import Settings
from kme_rag.whitebox.session import WeightEditor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", choices=("counterfact", "zsre"), default="counterfact")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, required=True)
    parser.add_argument("--method", choices=("rome", "memit"), default="memit")
    args = parser.parse_args()
    settings = Settings()
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    cases = load_cases(args.dataset, settings.data_dir, args.stop, None)
    weights = WeightEditor.open_scratch(settings)
    start = time.perf_counter()
    for i, case in enumerate(cases[args.start :], start=args.start):
        computed = weights.prepare_targets([case.edit], args.method)
        if computed or i % 50 == 0:
            print(
                f"case {i}: computed {computed} ({time.perf_counter() - start:.0f} s)", flush=True
            )
    counts = weights.target_counts
    print(f"done: {counts.computed} computed, {counts.reused} already cached")


if __name__ == "__main__":
    main()
