"""Calibrating the similarity baseline on the training splits only.

Pairs come from ``counterfact-train.json`` (an edit's statement against its own prompt
and paraphrase: in scope; against its neighbourhood prompt and another record's prompt:
out of scope) and zsRE records 0-499 (question and rephrase in scope, the unrelated
``loc`` question out of scope). The threshold is the cut with the best balanced accuracy.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from kme_rag.memory.embedder import Embedder
from kme_rag.memory.formats import counterfact_edit, zsre_edit
from kme_rag.scope.data import ZSRE_TRAIN
from kme_rag.scope.similarity import balanced_threshold

__all__ = ["calibrate_similarity", "similarity_pairs"]


def similarity_pairs(
    counterfact: list[dict[str, Any]], zsre: list[dict[str, Any]], seed: int = 0
) -> list[tuple[str, str, bool]]:
    """(edit statement, query, in scope) pairs from training records."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str, bool]] = []
    for record in counterfact:
        statement = counterfact_edit(record, "train").statement
        other = rng.choice(counterfact)["prompt"]
        pairs += [
            (statement, record["prompt"], True),
            (statement, record["rephrase_prompt"], True),
            (statement, record["locality_prompt"], False),
            (statement, other, other == record["prompt"]),
        ]
    for i, record in enumerate(zsre):
        statement = zsre_edit(record, "train", i).statement
        pairs += [
            (statement, record["src"], True),
            (statement, record["rephrase"], True),
            (statement, record["loc"], False),
        ]
    return pairs


def calibrate_similarity(
    data_dir: Path, embedder: Embedder, n_counterfact: int = 2000
) -> dict[str, float | int]:
    """The balanced-accuracy threshold of cosine(statement, query) on training pairs."""
    counterfact = json.loads((data_dir / "counterfact" / "counterfact-train.json").read_text())
    zsre = json.loads((data_dir / "zsre" / "zsre_mend_train-1k.json").read_text())
    pairs = similarity_pairs(counterfact[:n_counterfact], [zsre[i] for i in ZSRE_TRAIN])
    left = embedder.embed([p[0] for p in pairs])
    right = embedder.embed([p[1] for p in pairs])
    sims = (left * right).sum(axis=1)  # (pairs,) cosine: rows are unit vectors
    labels = np.array([p[2] for p in pairs])
    threshold, accuracy = balanced_threshold(sims[labels], sims[~labels])
    return {
        "threshold": round(threshold, 4),
        "balanced_accuracy": round(accuracy, 4),
        "n_pairs": len(pairs),
        "n_in": int(labels.sum()),
        "n_out": int((~labels).sum()),
    }
