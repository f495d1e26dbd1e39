"""The embedder: the torch-free ONNX graph and the torch module agree, the default route
never imports torch, and similar sentences land close."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from kme_rag.memory.embedder import MiniLMEmbedder

SENTENCES = [
    "The Eiffel Tower is located in Rome.",
    "Where is the Eiffel Tower?",
    "The capital of Japan is Kyoto.",
    "A much longer sentence about nothing in particular, " * 3,
    "x",
]


def test_onnx_matches_torch_and_is_cached(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    fresh = MiniLMEmbedder(cache_dir=tmp_path)
    onnx = fresh.embed(SENTENCES)
    exports = list((tmp_path / "embedder").glob("*/model.onnx"))
    assert len(exports) == 1 and (exports[0].parent / "meta.json").is_file()
    reference = MiniLMEmbedder(runtime="torch").embed(SENTENCES)
    assert onnx.shape == (5, 384) and onnx.dtype == np.float32
    assert np.abs(onnx - reference).max() < 1e-4
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    # Batching and order do not change a sentence's vector.
    single = np.stack([embedder.embed([s])[0] for s in SENTENCES])
    assert np.abs(single - onnx).max() < 1e-4


def test_paraphrases_are_nearer_than_unrelated(embedder: MiniLMEmbedder) -> None:
    fact, question, other = embedder.embed(SENTENCES[:3])
    assert float(fact @ question) > float(fact @ other) + 0.2


def test_empty_input_gives_an_empty_matrix(embedder: MiniLMEmbedder) -> None:
    assert embedder.embed([]).shape == (0, 384)


def test_the_default_route_embeds_with_torch_and_transformers_unimportable(
    tmp_path: Path,
) -> None:
    """A core install has no torch: building the graph and embedding must not need it."""
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("torch", "transformers", "sentence_transformers"):
            sys.modules[name] = None  # any import of them raises ImportError
        from pathlib import Path
        from kme_rag.memory.embedder import MiniLMEmbedder
        vector = MiniLMEmbedder(cache_dir=Path({str(tmp_path)!r})).embed(["Where is Rome?"])
        assert vector.shape == (1, 384), vector.shape
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
