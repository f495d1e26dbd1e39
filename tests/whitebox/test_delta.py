from __future__ import annotations

import pytest
import torch
from transformers import GPT2LMHeadModel, LlamaForCausalLM

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import get_module, read_projection
from kme_rag.whitebox.delta import (
    LayerDelta,
    WeightDelta,
    apply_delta,
    delta_from_bytes,
    delta_to_bytes,
    undo,
)
from tests.whitebox.tiny import all_equal, parameters_snapshot

GPT2_PROJ = "transformer.h.{}.mlp.c_proj"
LLAMA_PROJ = "model.layers.{}.mlp.down_proj"


def _rank_one(path: str, out: int, inp: int, seed: int = 0) -> LayerDelta:
    gen = torch.Generator().manual_seed(seed)
    return LayerDelta(
        path, left=torch.randn(out, 1, generator=gen), right=torch.randn(inp, 1, generator=gen)
    )


def test_apply_writes_w_plus_delta_in_out_by_in(gpt2: GPT2LMHeadModel) -> None:
    path = GPT2_PROJ.format(1)
    before = read_projection(get_module(gpt2, path)).detach().clone()
    layer = _rank_one(path, 32, 128)
    apply_delta(gpt2, WeightDelta("rome", (layer,)))
    expected = before + layer.matrix(torch.float32, before.device)
    assert torch.allclose(read_projection(get_module(gpt2, path)), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_undo_restores_every_parameter_bit_for_bit(
    llama: LlamaForCausalLM, dtype: torch.dtype
) -> None:
    llama.to(dtype)
    snapshot = parameters_snapshot(llama)
    delta = WeightDelta(
        "memit",
        (
            _rank_one(LLAMA_PROJ.format(0), 32, 64, seed=1),
            LayerDelta(LLAMA_PROJ.format(2), dense=torch.randn(32, 64) * 1e-3),
        ),
    )
    applied = apply_delta(llama, delta)
    assert not all_equal(llama, snapshot)
    undo(llama, applied)
    assert all_equal(llama, snapshot)


def test_undo_in_the_wrong_order_is_refused(gpt2: GPT2LMHeadModel) -> None:
    path = GPT2_PROJ.format(0)
    first = apply_delta(gpt2, WeightDelta("rome", (_rank_one(path, 32, 128, 1),)))
    second = apply_delta(gpt2, WeightDelta("rome", (_rank_one(path, 32, 128, 2),)))
    with pytest.raises(WhiteboxError, match="undo later edits first"):
        undo(gpt2, first)
    undo(gpt2, second)
    undo(gpt2, first)


def test_undo_of_an_unapplied_delta_and_double_apply_are_refused(gpt2: GPT2LMHeadModel) -> None:
    delta = WeightDelta("rome", (_rank_one(GPT2_PROJ.format(0), 32, 128),))
    with pytest.raises(WhiteboxError, match="never applied"):
        undo(gpt2, delta)
    with pytest.raises(WhiteboxError, match="already applied"):
        apply_delta(gpt2, apply_delta(gpt2, delta))


def test_malformed_deltas_are_rejected(gpt2: GPT2LMHeadModel) -> None:
    with pytest.raises(WhiteboxError, match="either"):
        LayerDelta("x", left=torch.ones(2, 1))
    with pytest.raises(WhiteboxError, match="rank mismatch"):
        LayerDelta("x", left=torch.ones(2, 1), right=torch.ones(3, 2))
    wrong = WeightDelta("rome", (_rank_one(GPT2_PROJ.format(0), 128, 32),))  # (in, out): wrong
    with pytest.raises(WhiteboxError, match="does not match"):
        apply_delta(gpt2, wrong)


def test_bytes_round_trip_reapplies_to_the_same_bits(gpt2: GPT2LMHeadModel) -> None:
    snapshot = parameters_snapshot(gpt2)
    delta = WeightDelta(
        "memit",
        (
            _rank_one(GPT2_PROJ.format(0), 32, 128),
            LayerDelta(GPT2_PROJ.format(1), dense=torch.randn(32, 128)),
        ),
    )
    applied = apply_delta(gpt2, delta)
    edited = parameters_snapshot(gpt2)
    undo(gpt2, applied)

    restored = delta_from_bytes(delta_to_bytes(applied))
    assert not restored.applied and restored.method == "memit"
    again = apply_delta(gpt2, restored)
    assert all_equal(gpt2, edited)

    with_originals = delta_from_bytes(delta_to_bytes(again, include_originals=True))
    undo(gpt2, with_originals)
    assert all_equal(gpt2, snapshot)
