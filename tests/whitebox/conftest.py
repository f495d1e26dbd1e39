"""Tiny randomly initialised models for the white-box tests (no downloads, one thread)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import GPT2LMHeadModel, LlamaForCausalLM

from kme_rag.backends import bundled_model_path
from kme_rag.whitebox.loading import LoadedModel, load_model
from tests.whitebox.tiny import tiny_gpt2, tiny_llama


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def gpt2() -> GPT2LMHeadModel:
    return tiny_gpt2()


@pytest.fixture
def llama() -> LlamaForCausalLM:
    return tiny_llama()


@pytest.fixture(scope="session")
def converted(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LoadedModel, float, Path]]:
    """The real Gemma 3 270M after a fresh GGUF conversion (minutes on a CPU, once per
    run), how long that took, and its cache folder (about 1 GB, deleted afterwards)."""
    cache = tmp_path_factory.mktemp("kme_cache")
    start = time.perf_counter()
    loaded = load_model(bundled_model_path(), cache_dir=cache)
    yield loaded, time.perf_counter() - start, cache
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture
def gemma(converted: tuple[LoadedModel, float, Path]) -> LoadedModel:
    return converted[0]
