from __future__ import annotations

import pytest
import torch
from transformers import GPT2LMHeadModel

from kme_rag.whitebox.hooks import capture, replace_output, stop_after

IDS = torch.tensor([[5, 6, 7, 8]])


def _no_hooks(model: torch.nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def test_capture_sees_the_projection_input_and_output(gpt2: GPT2LMHeadModel) -> None:
    mlp = gpt2.transformer.h[1].mlp
    with capture(mlp.c_proj) as seen:
        gpt2(input_ids=IDS)
    assert seen.input is not None and seen.output is not None
    assert seen.input.shape == (1, 4, 128) and seen.output.shape == (1, 4, 32)
    assert torch.allclose(mlp.c_proj(seen.input), seen.output)
    assert _no_hooks(gpt2)


def test_captured_tensors_are_detached_copies(gpt2: GPT2LMHeadModel) -> None:
    block = gpt2.transformer.h[0]
    with capture(block) as seen:
        gpt2(input_ids=IDS)  # grads enabled: the live activations carry a graph
    assert seen.output is not None and not seen.output.requires_grad
    with capture(block, input=False) as again:
        gpt2(input_ids=IDS)
    assert again.input is None and torch.equal(again.output, seen.output)


def test_replace_output_changes_the_logits_and_is_removed(gpt2: GPT2LMHeadModel) -> None:
    with torch.no_grad():
        before = gpt2(input_ids=IDS).logits
        with replace_output(gpt2.transformer.h[1].mlp.c_proj, lambda out: out + 1.0):
            during = gpt2(input_ids=IDS).logits
        after = gpt2(input_ids=IDS).logits
    assert not torch.allclose(before, during) and torch.equal(before, after)


def test_replace_output_keeps_the_rest_of_a_tuple(gpt2: GPT2LMHeadModel) -> None:
    block = gpt2.transformer.h[1]
    with torch.no_grad(), replace_output(block, torch.zeros_like), capture(block) as seen:
        gpt2(input_ids=IDS)
    assert seen.output is not None and torch.equal(seen.output, torch.zeros(1, 4, 32))


def test_stop_after_ends_the_forward_pass(gpt2: GPT2LMHeadModel) -> None:
    reached = []
    with capture(gpt2.transformer.h[0]) as first, stop_after(gpt2.transformer.h[0]):
        with capture(gpt2.lm_head) as head:
            gpt2(input_ids=IDS)
        reached.append("rest of block")  # skipped: the stop unwinds the whole block
    assert first.output is not None and head.output is None and not reached
    assert _no_hooks(gpt2)


def test_capture_with_stop(gpt2: GPT2LMHeadModel) -> None:
    with capture(gpt2.transformer.h[0].mlp.c_proj, stop=True) as seen, capture(gpt2.lm_head) as h:
        gpt2(input_ids=IDS)
    assert seen.input is not None and h.output is None and _no_hooks(gpt2)


def test_hooks_detach_when_the_block_raises(gpt2: GPT2LMHeadModel) -> None:
    proj = gpt2.transformer.h[1].mlp.c_proj
    with (
        pytest.raises(RuntimeError, match="boom"),
        capture(proj),
        replace_output(proj, lambda o: o),
        stop_after(proj),
    ):
        raise RuntimeError("boom")
    assert not proj._forward_hooks and _no_hooks(gpt2)


def test_hooks_detach_when_the_forward_pass_raises(gpt2: GPT2LMHeadModel) -> None:
    proj = gpt2.transformer.h[1].mlp.c_proj

    def broken(out: torch.Tensor) -> torch.Tensor:
        raise ValueError("bad replacement")

    with (
        pytest.raises(ValueError, match="bad replacement"),
        capture(proj),
        replace_output(proj, broken),
    ):
        gpt2(input_ids=IDS)
    assert not proj._forward_hooks and _no_hooks(gpt2)
