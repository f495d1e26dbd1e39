"""Set ``WalkParams.composition_margin`` on single-hop training questions only.

    .venv/bin/python benchmarks/experiments/composition_margin.py

The editor walks a question only when its best relation chain has two hops or more and
beats the best single relation by the margin. Every question here asks *one* relation
(zsRE training records 0-499, question and rephrase; MQuAKE's single-hop scope-pair
questions minus those of evaluation edits), so each one the rule would walk is a false
trigger. For each question, with its subject masked, the chain search runs twice: with no
anchor, and anchored on a random other relation (a stored edit of another relation of
the same subject, the case that made same-subject questions walk). The margin printed is
the 99th percentile of (best chain - best single relation) over the multi-hop winners,
so that at most ~1% of single-hop training questions trigger a walk. No evaluation
question (MQuAKE's evaluation files, the held-out sets) is read.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from kme_rag.memory.edit import normalise_name
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.multihop.relations import RelationBank, infer_chain
from kme_rag.multihop.walk import mask
from kme_rag.scope.data import (
    MQUAKE_EVAL_FILES,
    ZSRE_TRAIN,
    mquake_eval_statements,
    statement_subject,
)
from kme_rag.settings import Settings


def questions(data_dir: Path, rng: random.Random, n: int = 600) -> list[tuple[str, str]]:
    zsre = json.loads((data_dir / "zsre" / "zsre_mend_train-1k.json").read_text())
    out = [(zsre[i][f], zsre[i]["subject"]) for i in ZSRE_TRAIN for f in ("src", "rephrase")]
    pairs = json.loads((data_dir / "mquake" / "scope-pairs-cls-filtered.json").read_text())
    held = mquake_eval_statements(data_dir / "mquake" / name for name in MQUAKE_EVAL_FILES)
    for record in pairs:
        subject = statement_subject(record["edit"], record["questions"])
        if subject and normalise_name(record["edit"]) not in held:
            out += [(q, subject) for q in record["questions"][:1]]
    out = [(q, s) for q, s in out if s.lower() in q.lower()]
    return rng.sample(out, min(n, len(out)))


def main() -> None:
    settings = Settings()
    rng = random.Random(0)
    embedder = MiniLMEmbedder.from_settings(settings)
    bank = RelationBank.from_mquake(settings.data_dir, embedder)
    ids = sorted(bank.relations)
    gaps, asked = [], 0
    for question, subject in questions(settings.data_dir, rng):
        for anchors in ((), (rng.choice(ids),)):
            found = infer_chain(bank, mask(question, subject), subject=subject, anchors=anchors)
            asked += 1
            best = found[0]
            single = max(c.score for c in found if len(c.relations) == 1)
            if len(best.relations) > 1:
                gaps.append(best.score - single)
    share = len(gaps) / asked
    print(
        json.dumps(
            {
                "searches": asked,
                "multi_hop_winners": len(gaps),
                "share": round(share, 4),
                "gap_percentiles": {
                    str(q): round(float(np.percentile(gaps, q)), 4) for q in (50, 90, 95, 99)
                }
                if gaps
                else {},
                # walk only above the gap that ~1% of single-hop questions reach
                "margin": round(float(np.percentile(gaps, 100 * (1 - 0.01 / share))), 4)
                if gaps and share > 0.01
                else 0.0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
