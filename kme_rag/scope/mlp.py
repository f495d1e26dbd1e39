"""The scope classifier's weights: a one-hidden-layer MLP and its calibrated threshold,
shipped in ``kme_rag/scope/weights/`` (trained by :mod:`kme_rag.scope.training`).

Kept apart from :mod:`kme_rag.scope.classifier` so that readers of the weights that do
not score store candidates (the free-text reader, :mod:`kme_rag.scope.extract`) need
nothing of the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kme_rag.errors import ConfigurationError

__all__ = ["SHIPPED_WEIGHTS", "ScopeWeights"]

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "scope-mlp.npz"


@dataclass(frozen=True)
class ScopeWeights:
    """The MLP ``sigmoid(w2 · relu(W1 x + b1) + b2)`` and its calibrated threshold."""

    w1: np.ndarray  # (features, hidden)
    b1: np.ndarray  # (hidden,)
    w2: np.ndarray  # (hidden,)
    b2: float
    threshold: float
    card: dict[str, Any] = field(default_factory=dict)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """(pairs,) in-scope probabilities for (pairs, features) rows."""
        hidden = np.maximum(x @ self.w1 + self.b1, 0.0)  # (pairs, hidden)
        logits = hidden @ self.w2 + self.b2  # (pairs,)
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))

    def save(self, path: Path) -> None:
        """Write ``path`` (.npz) and its card ``path.with_suffix('.json')``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, w1=self.w1, b1=self.b1, w2=self.w2, b2=np.float32(self.b2))
        card = {**self.card, "threshold": self.threshold}
        path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path = SHIPPED_WEIGHTS) -> ScopeWeights:
        card_path = path.with_suffix(".json")
        if not path.is_file() or not card_path.is_file():
            raise ConfigurationError(
                f"expected scope weights at {path} with card {card_path.name}; "
                "run `kme scope train` to produce them"
            )
        card = json.loads(card_path.read_text())
        with np.load(path) as data:
            return cls(
                w1=data["w1"].astype(np.float32),
                b1=data["b1"].astype(np.float32),
                w2=data["w2"].astype(np.float32),
                b2=float(data["b2"]),
                threshold=float(card["threshold"]),
                card=card,
            )
