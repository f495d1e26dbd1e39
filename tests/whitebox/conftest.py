"""Tiny randomly initialised models for the white-box tests (no downloads, one thread)."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2LMHeadModel, LlamaForCausalLM

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
