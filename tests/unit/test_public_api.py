from __future__ import annotations

import kme_rag

EXPECTED = {
    "Answer",
    "Backend",
    "CallableBackend",
    "Edit",
    "EditMemory",
    "EditorParams",
    "Embedder",
    "FactGraph",
    "GraphWalker",
    "KmeError",
    "KnowledgeEditor",
    "LlamaCppBackend",
    "Message",
    "MiniLMEmbedder",
    "OpenAIBackend",
    "ScopeModel",
    "SearchHit",
    "Settings",
    "SimilarityScope",
    "TrainedScope",
    "__version__",
    "build_walker",
    "make_backend",
    "wrap",
}


def test_public_surface_is_pinned() -> None:
    assert set(kme_rag.__all__) == EXPECTED
    for name in kme_rag.__all__:
        assert hasattr(kme_rag, name), name


def test_import_has_no_heavy_side_effects() -> None:
    import subprocess
    import sys

    code = (
        "import sys, logging, kme_rag; "
        "assert 'llama_cpp' not in sys.modules, 'llama_cpp'; "
        "assert 'torch' not in sys.modules, 'torch'; "
        "assert 'chromadb' not in sys.modules, 'chromadb'; "
        "assert not logging.getLogger().handlers"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
