"""The similarity-threshold scope baseline, calibrated on the training split.

A structured edit is in scope when the query names its subject and the retrieval
similarity passes the threshold; an unstructured edit when the similarity passes a
threshold of its own and the query names one of the names the statement speaks of.
The thresholds come from :func:`calibrate`, which picks the value with the best balanced
accuracy on CounterFact's *training* split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kme_rag.memory.store import SearchHit
from kme_rag.scope.base import ScopeDecision, mentions_subject, names_what_it_states

__all__ = ["SimilarityScope", "balanced_threshold"]


def balanced_threshold(positives: np.ndarray, negatives: np.ndarray) -> tuple[float, float]:
    """The cut maximising (recall + specificity) / 2, and that balanced accuracy."""
    candidates = np.unique(np.concatenate([positives, negatives]))
    best, best_acc = 0.0, -1.0
    for cut in candidates:
        acc = ((positives >= cut).mean() + (negatives < cut).mean()) / 2
        if acc > best_acc:
            best, best_acc = float(cut), float(acc)
    return best, best_acc


@dataclass(frozen=True)
class SimilarityScope:
    """Subject mention + cosine threshold (structured), cosine threshold (free text).

    Both thresholds default to the balanced-accuracy cut measured by
    :func:`kme_rag.scope.calibrate.calibrate_similarity` on the training splits (2,000
    CounterFact records + zsRE 0-499: 0.5192, balanced accuracy 0.967;
    ``benchmarks/results/scope-calibration-*.json``).
    """

    threshold: float = 0.5192
    text_threshold: float = 0.5192
    name: str = "similarity"

    def decide(self, query: str, candidates: Sequence[SearchHit]) -> ScopeDecision:
        chosen = []
        for hit in candidates:
            if hit.edit.structured:
                ok = hit.score >= self.threshold and mentions_subject(query, hit.edit)
            else:
                ok = hit.score >= self.text_threshold and names_what_it_states(query, hit.edit)
            if ok:
                chosen.append(hit.edit)
        return ScopeDecision(tuple(chosen), tuple(h.score for h in candidates))
