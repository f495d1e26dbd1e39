"""Shared fixtures: the real embedder, the shared data folder, and the gpu marker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kme_rag.memory.embedder import MiniLMEmbedder

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """The real all-MiniLM-L6-v2, loaded once for the whole run."""
    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (or ``$KME_DATA_DIR``); tests needing it skip when it is absent."""
    path = Path(os.environ.get("KME_DATA_DIR", ROOT.parent / "shared" / "data"))
    if not (path / "counterfact").is_dir():
        pytest.skip(f"shared data not found at {path} (set KME_DATA_DIR)")
    return path
