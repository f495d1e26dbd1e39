"""Scope decisions alone on the held-out natural set: a routing diagnostic, no model calls.

    .venv/bin/python benchmarks/experiments/scope_natural.py [WEIGHTS.npz ...]

Stores the set's 120 edits in a scratch store and asks every question through the
editor's retrieval (:meth:`EditMemory.candidates`) and a scope model; prints, per
question kind, the share routed as it should be (in-scope kinds: the question's own edit
in scope; same-subject and neighbour questions: no edit in scope). This says which
design routes better; the answers themselves are `kme bench natural`'s. It was run once
per finished design to compare them (the issue asks for two), never to set a threshold
or a constant: every threshold is calibrated on the training data's validation split.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kme_rag.bench.natural import DEFAULT_SET, IN_SCOPE, load_natural
from kme_rag.memory.store import EditMemory
from kme_rag.scope.classifier import SHIPPED_WEIGHTS, ScopeWeights, TrainedScope
from kme_rag.settings import Settings


def main(paths: list[Path]) -> None:
    cases = load_natural(DEFAULT_SET)
    settings = Settings().model_copy(
        update={"store": Path(tempfile.mkdtemp(prefix="kme-scope-nat-")), "chroma_url": None}
    )
    memory = EditMemory.open(settings)
    memory.add_many([c.edit for c in cases])
    out = {}
    for path in paths or [SHIPPED_WEIGHTS]:
        scope = TrainedScope(memory.embedder, ScopeWeights.load(path))
        tally: dict[str, list[int]] = {}
        wrong: dict[str, list[str]] = {}
        ms = []
        for case in cases:
            for question in case.questions:
                hits = memory.candidates(question.text)
                start = time.perf_counter()
                chosen = [e.id for e in scope.decide(question.text, hits).in_scope]
                ms.append((time.perf_counter() - start) * 1000)
                right = case.case_id in chosen if question.kind in IN_SCOPE else not chosen
                kind = tally.setdefault(question.kind, [0, 0])
                kind[0] += right
                kind[1] += 1
                if not right:
                    wrong.setdefault(question.kind, []).append(question.text)
        out[str(path)] = {
            "routed_right": {k: f"{a}/{n} ({a / n:.1%})" for k, (a, n) in tally.items()},
            "decision_p50_ms": round(float(np.percentile(ms, 50)), 2),
            "wrong_examples": {k: v[:8] for k, v in wrong.items()},
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
