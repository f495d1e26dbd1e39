"""How often ``looks_composed`` fires: on compositions, and on single-relation questions.

    .venv/bin/python benchmarks/experiments/composition_cue.py [--show N]

Recall: the multi-hop questions of MQuAKE-CF-slice300 cases 0-39 (the walk's tuning
cases; ``WalkParams``). False triggers: single-relation training questions (zsRE training
records 0-499, question and rephrase; every question of MQuAKE's training scope pairs minus
those of evaluation edits), each of which the cue should leave alone. No evaluation
question (MQuAKE's evaluation cases past 39, the held-out sets) is read.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from kme_rag.memory.edit import normalise_name
from kme_rag.multihop.walk import looks_composed
from kme_rag.scope.data import MQUAKE_EVAL_FILES, ZSRE_TRAIN, mquake_eval_statements
from kme_rag.settings import Settings

TUNING_CASES = range(0, 40)


def single_relation(data_dir: Path) -> list[str]:
    zsre = json.loads((data_dir / "zsre" / "zsre_mend_train-1k.json").read_text())
    out = [zsre[i][f] for i in ZSRE_TRAIN for f in ("src", "rephrase")]
    pairs = json.loads((data_dir / "mquake" / "scope-pairs-cls-filtered.json").read_text())
    held = mquake_eval_statements(data_dir / "mquake" / name for name in MQUAKE_EVAL_FILES)
    for record in pairs:
        if normalise_name(record["edit"]) not in held:
            out += record["questions"]
    return sorted(set(out))


def compositions(data_dir: Path) -> list[str]:
    cases = json.loads((data_dir / "mquake" / "MQuAKE-CF-slice300.json").read_text())
    return [q for i in TUNING_CASES for q in cases[i]["questions"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--show", type=int, default=0, help="print N misses of each kind")
    args = parser.parse_args()
    data_dir = Settings().data_dir
    singles, composed = single_relation(data_dir), compositions(data_dir)
    false = [q for q in singles if looks_composed(q)]
    missed = [q for q in composed if not looks_composed(q)]
    print(
        json.dumps(
            {
                "compositions": len(composed),
                "recall": round(1 - len(missed) / len(composed), 4),
                "single_relation_questions": len(singles),
                "false_trigger_rate": round(len(false) / len(singles), 4),
            }
        )
    )
    rng = random.Random(0)
    for name, rows in (("missed", missed), ("false", false)):
        for q in rng.sample(rows, min(args.show, len(rows))):
            print(f"{name}: {q}", file=sys.stderr)


if __name__ == "__main__":
    main()
