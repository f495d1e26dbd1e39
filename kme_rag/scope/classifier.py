"""The trained scope classifier (SERAC-style): which retrieved edits a query touches.

For each candidate edit whose subject (or an alias) the query names, the pair features of
:mod:`kme_rag.scope.features` go through a small trained MLP (one hidden layer, weights
shipped in ``kme_rag/scope/weights/``, trained by :mod:`kme_rag.scope.training`); the
edit is in scope when the probability passes the threshold calibrated on a validation
split of the training data. A candidate whose subject the query does not name is out of
scope without scoring: at 10,000 stored edits, partial names ("George" for "George Dance
the Younger") made more false positives than they found paraphrases. Unstructured edits
(free sentences no fact was read from) have no relation to compare: the similarity
baseline's text threshold decides, for questions that name one of the names the statement
speaks of (:func:`~kme_rag.scope.base.names_what_it_states`).

Cost per query: one embedding call for the masked query (and for relation texts not yet
cached), then a matrix product; queries that name no candidate cost nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from kme_rag.memory.embedder import Embedder
from kme_rag.memory.store import SearchHit
from kme_rag.scope.base import ScopeDecision, names_what_it_states
from kme_rag.scope.features import numeric_object, pair_features, pair_mention, relation_texts_of
from kme_rag.scope.mlp import SHIPPED_WEIGHTS, ScopeWeights
from kme_rag.scope.similarity import SimilarityScope

__all__ = ["SHIPPED_WEIGHTS", "ScopeWeights", "TrainedScope"]

_CACHE = 8192  # relation texts kept embedded (CounterFact's 10,000 edits use ~250)


class TrainedScope:
    """The default scope model: the trained pair classifier over the retrieved edits."""

    name = "classifier"

    def __init__(
        self,
        embedder: Embedder,
        weights: ScopeWeights | None = None,
        *,
        threshold: float | None = None,
        text_threshold: float = SimilarityScope.text_threshold,
        statement_gate: bool = True,
    ) -> None:
        self.embedder = embedder
        self.statement_gate = statement_gate  # False: statements by the cosine alone (ablation)
        self.weights = weights or ScopeWeights.load()
        self.threshold = self.weights.threshold if threshold is None else threshold
        self.text_threshold = text_threshold
        self._relations: OrderedDict[str, np.ndarray] = OrderedDict()

    def _embed_relations(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, dim) embeddings of relation texts, through a small LRU cache."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._relations))
        if missing:
            for text, vector in zip(missing, self.embedder.embed(missing), strict=True):
                self._relations[text] = vector
        for text in texts:
            self._relations.move_to_end(text)
        while len(self._relations) > _CACHE:
            self._relations.popitem(last=False)
        return np.stack([self._relations[t] for t in texts])

    def probabilities(self, query: str, candidates: Sequence[SearchHit]) -> np.ndarray:
        """(candidates,) in-scope probability of each structured edit for ``query``; 0 for
        an edit whose subject the query does not name, NaN for an unstructured edit."""
        edits = [h.edit for h in candidates]
        out = np.zeros(len(edits), dtype=np.float32)
        rows, mentions, relations = [], [], []
        for i, edit in enumerate(edits):
            texts = relation_texts_of(edit)
            if not texts:
                out[i] = np.nan
                continue
            mention = pair_mention(query, edit)
            if mention.exact:
                for relation in texts:  # the best of the relation's texts
                    rows.append(i)
                    mentions.append(mention)
                    relations.append(relation)
        if not rows:
            return out
        masked = list(dict.fromkeys(m.masked for m in mentions))
        by_text = dict(zip(masked, self.embedder.embed(masked), strict=True))
        queries = np.stack([by_text[m.masked] for m in mentions])  # (rows, dim)
        retrieval = np.array([candidates[i].score for i in rows], dtype=np.float32)
        numeric = [numeric_object(edits[i]) for i in rows]
        x = pair_features(queries, self._embed_relations(relations), mentions, retrieval, numeric)
        np.maximum.at(out, np.array(rows), self.weights.probability(x).astype(np.float32))
        return out

    def decide(self, query: str, candidates: Sequence[SearchHit]) -> ScopeDecision:
        probs = self.probabilities(query, candidates)
        scores, chosen = [], []
        for hit, p in zip(candidates, probs, strict=True):
            if np.isnan(p):  # unstructured: the similarity baseline decides
                score = hit.score
                ok = score >= self.text_threshold and (
                    not self.statement_gate or names_what_it_states(query, hit.edit)
                )
            else:
                score, ok = float(p), p >= self.threshold
            scores.append(score)
            if ok:
                chosen.append((score, hit.edit))
        chosen.sort(key=lambda pair: -pair[0])
        return ScopeDecision(tuple(e for _, e in chosen), tuple(scores))
