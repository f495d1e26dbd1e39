"""Slow tests on the real Gemma 3 270M GGUF: conversion cache, ROME, exact undo, tracing.

The GGUF is converted once per test module into a fresh cache folder (minutes on a CPU),
then every test shares that model.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch

from kme_rag.backends import bundled_model_path
from kme_rag.whitebox.architectures import get_module, read_projection
from kme_rag.whitebox.delta import undo
from kme_rag.whitebox.edit_requests import (
    CONTEXT_PREFIXES,
    cloze_prompt,
    edit_request,
    locate_subject,
    probability_metrics,
)
from kme_rag.whitebox.loading import LoadedModel, load_model
from kme_rag.whitebox.rome import RomeParams, apply_rome
from kme_rag.whitebox.second_moments import identity_second_moment
from kme_rag.whitebox.tracing import TraceParams, trace_prompt
from tests.edits import GEMMA_EIFFEL as EIFFEL
from tests.edits import GEMMA_PROMPT as PROMPT

pytestmark = pytest.mark.slow


def test_the_second_load_comes_from_the_cache_with_equal_weights(
    converted: tuple[LoadedModel, float, Path],
) -> None:
    first, first_s, cache = converted
    start = time.perf_counter()
    second = load_model(bundled_model_path(), cache_dir=cache)
    second_s = time.perf_counter() - start
    assert second_s < first_s / 2, (first_s, second_s)
    assert len(list((cache / "converted").glob("*/conversion.json"))) == 1
    assert first.architecture.model_type == "gemma3_text" and second.identity == first.identity
    assert first.architecture.num_layers(first.model) == 18
    for name in (
        "model.embed_tokens.weight",
        "model.layers.5.mlp.down_proj.weight",
        "model.layers.17.self_attn.q_proj.weight",
        "model.norm.weight",
    ):
        assert torch.equal(first.model.get_parameter(name), second.model.get_parameter(name))


def test_subject_last_agrees_with_tokenising_up_to_the_subject(gemma: LoadedModel) -> None:
    """Offsets and ROME's way (tokenise the text up to the subject's end) agree on Gemma."""
    tokenizer, prompt = gemma.tokenizer, cloze_prompt(EIFFEL)
    request = edit_request(tokenizer, EIFFEL)
    for prefix, tokenized in zip(CONTEXT_PREFIXES, request.prompts, strict=True):
        text = f"{prefix} {prompt}" if prefix else prompt
        end = text.index("Eiffel Tower") + len("Eiffel Tower")
        assert tokenized.subject_last == len(tokenizer(text[:end])["input_ids"]) - 1
        assert tokenized.input_ids[0] == tokenizer.bos_token_id
    span = locate_subject(tokenizer, PROMPT, "Eiffel Tower")
    subject_text = tokenizer.decode(list(span.input_ids[span.first : span.last + 1]))
    assert subject_text.strip() == "Eiffel Tower"
    assert tokenizer.decode(list(request.target_ids)) == " Rome"


def test_rome_moves_the_eiffel_tower_to_rome_and_undo_is_exact(gemma: LoadedModel) -> None:
    model, tokenizer, arch = gemma.model, gemma.tokenizer, gemma.architecture
    layer = arch.rome_layer(arch.num_layers(model))
    projection = get_module(model, arch.projection_path(layer))
    original = read_projection(projection).detach().clone()
    before = probability_metrics(model, tokenizer, PROMPT, "Rome", "Paris")
    assert not before.success

    delta = apply_rome(
        model,
        edit_request(tokenizer, EIFFEL),
        RomeParams(layer=layer),
        identity_second_moment(original.shape[1]),
    )
    after = probability_metrics(model, tokenizer, PROMPT, "Rome", "Paris")
    assert after.success, (before, after)

    undo(model, delta)
    assert torch.equal(read_projection(projection), original)
    assert probability_metrics(model, tokenizer, PROMPT, "Rome", "Paris") == before


def test_causal_trace_gives_a_finite_effect_for_every_layer(gemma: LoadedModel) -> None:
    trace = trace_prompt(
        gemma.model, gemma.tokenizer, PROMPT, "Eiffel Tower", TraceParams(samples=3)
    )
    assert gemma.tokenizer.decode([trace.answer]) == " Paris"
    assert trace.corrupted < trace.clean / 2
    for site in ("layer", "mlp"):
        effects = trace.effects(site)
        assert len(effects) == 18 and all(math.isfinite(e) for e in effects)
    assert max(trace.effects("layer")) > 0
