"""The target optimisation reads logits only where it needs them: the same numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kme_rag.whitebox.target import logits_at
from tests.whitebox.tiny import tiny_gpt2, tiny_llama


@pytest.mark.parametrize("build", [tiny_gpt2, tiny_llama])
def test_logits_at_equal_the_full_forward_at_those_places(build: object) -> None:
    model: nn.Module = build()  # type: ignore[operator]
    ids = torch.randint(0, 128, (3, 7))
    mask = torch.ones_like(ids)
    mask[2, 5:] = 0  # a right-padded row
    rows, positions = torch.tensor([0, 0, 1, 2]), torch.tensor([6, 2, 3, 4])
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits  # (3, 7, V)
        picked = logits_at(model, ids, mask, rows, positions)  # (4, V)
    assert torch.allclose(picked, full[rows, positions], atol=1e-5)


def test_logits_at_applies_the_final_soft_cap() -> None:
    model = tiny_llama()
    ids, mask = torch.randint(0, 128, (1, 5)), torch.ones(1, 5, dtype=torch.long)
    rows, positions = torch.tensor([0]), torch.tensor([4])
    with torch.no_grad():
        raw = logits_at(model, ids, mask, rows, positions)
        model.config.final_logit_softcapping = 2.0
        capped = logits_at(model, ids, mask, rows, positions)
    assert torch.allclose(capped, torch.tanh(raw / 2.0) * 2.0)
    assert capped.abs().max() < 2.0
