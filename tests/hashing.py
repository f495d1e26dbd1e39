"""A fast, deterministic stand-in for MiniLM where only the store is under test.

The embedder is an injected dependency (:class:`kme_rag.memory.embedder.Embedder`); the
store tests that write tens of thousands of records, or run thousands of operations, use
this one so the minutes go to Chroma, not to the encoder. Equal texts get equal unit
vectors; different texts, nearly orthogonal ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


class HashEmbedder:
    """Unit vectors seeded by each text's SHA-256."""

    def __init__(self, dim: int = 16) -> None:
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            row = np.random.default_rng(seed).standard_normal(self._dim)
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self._dim)
