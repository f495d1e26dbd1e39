"""The IKE demonstration pool on the training split, with the real embedder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kme_rag.ike import DemoPool, IKEParams
from kme_rag.memory.embedder import MiniLMEmbedder


def test_nearest_demonstrations_by_kind_most_similar_last(
    data_dir: Path, embedder: MiniLMEmbedder
) -> None:
    pool = DemoPool.from_file(data_dir / "counterfact" / "counterfact-train.json", embedder, 300)
    query = "The mother tongue of Jean Dupont is"
    demos = pool.select(embedder.embed([query])[0], IKEParams(k_copy=1, k_update=3, k_retain=4))
    assert Counter(d.kind for d in demos) == {"copy": 1, "update": 3, "retain": 4}
    nearest = demos[-1].fact
    assert any(w in nearest.lower() for w in ("tongue", "language", "speak")), nearest
    fixed = pool.select(None, IKEParams(k_copy=1, k_update=1, k_retain=1, selection="fixed"))
    assert fixed == pool.select(
        None, IKEParams(k_copy=1, k_update=1, k_retain=1, selection="fixed")
    )
    assert len(pool) == 300 and len(pool.key) == 16
