"""Calibrate the similarity scope baseline on the training splits and record the result.

    .venv/bin/python benchmarks/experiments/scope_calibration.py [--n 2000] [--out DIR]

Reads counterfact-train.json (first N records) and zsRE records 0-499 only, and writes
``scope-calibration-<date>.json``: the balanced-accuracy threshold that
``SimilarityScope`` uses by default.

Measured 2026-11-25: ``results/scope-calibration-2026-11-25.json``, the threshold
``SimilarityScope`` ships with.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.scope.calibrate import calibrate_similarity

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("KME_DATA_DIR", ROOT.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=default)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    result = {
        "benchmark": "scope-calibration",
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {"counterfact-train.json": f"records 0-{args.n - 1}", "zsre": "records 0-499"},
        "results": calibrate_similarity(args.data_dir, MiniLMEmbedder(), args.n),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"scope-calibration-{datetime.now(UTC):%Y-%m-%d}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
