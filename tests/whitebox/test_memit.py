from __future__ import annotations

import pytest
import torch
from transformers import GPT2LMHeadModel

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.delta import undo
from kme_rag.whitebox.memit import MemitParams, apply_memit, memit_layer_update
from kme_rag.whitebox.second_moments import (
    SecondMoment,
    corpus_second_moment,
    identity_second_moment,
    token_windows,
)
from tests.whitebox.tiny import (
    all_equal,
    edit_request,
    parameters_snapshot,
    target_logprob,
    tiny_gpt2,
)

LAYERS = (1, 2)


@pytest.mark.parametrize(("n", "lam"), [(3, 0.5), (12, 15000.0)])
def test_memit_update_satisfies_its_normal_equations(n: int, lam: float) -> None:
    gen = torch.Generator().manual_seed(n)
    d_in, d_out = 10, 6
    keys = torch.randn(d_in, n, generator=gen, dtype=torch.float64)
    residuals = torch.randn(d_out, n, generator=gen, dtype=torch.float64)
    a = torch.randn(d_in, d_in, generator=gen, dtype=torch.float64)
    c = a @ a.T / d_in + 0.1 * torch.eye(d_in, dtype=torch.float64)
    left, right = memit_layer_update(keys, residuals, c, lam)
    delta = left @ right.T  # (d_out, d_in)
    lhs = delta @ (lam * c + keys @ keys.T)
    assert torch.allclose(lhs, residuals @ keys.T, atol=1e-8 * max(1.0, lam))


def test_memit_update_checks_shapes() -> None:
    with pytest.raises(WhiteboxError, match="expected R"):
        memit_layer_update(torch.ones(4, 2), torch.ones(3, 5), torch.eye(4), 1.0)


def test_memit_params_validate_the_layers() -> None:
    with pytest.raises(WhiteboxError, match="increasing"):
        MemitParams(layers=(2, 1))
    with pytest.raises(WhiteboxError, match="increasing"):
        MemitParams(layers=())


def _stats(model: GPT2LMHeadModel) -> dict[int, SecondMoment]:
    ids = torch.randint(0, 128, (800,), generator=torch.Generator().manual_seed(1)).tolist()
    stats = {}
    for layer in LAYERS:
        proj = model.transformer.h[layer].mlp.c_proj
        matrix, tokens = corpus_second_moment(model, proj, token_windows(ids, 16, 8), samples=50)
        stats[layer] = SecondMoment(matrix, "corpus", tokens)
    return stats


def test_memit_writes_a_batch_of_edits_and_undoes_exactly() -> None:
    model = tiny_gpt2(n_layer=4)
    requests = [
        edit_request((11 + 3 * i, 12 + 3 * i, 13 + 3 * i), (7 + i,), seed=i) for i in range(4)
    ]
    snapshot = parameters_snapshot(model)

    def mean_logprob() -> list[float]:
        return [
            sum(target_logprob(model, p, r.target_ids) for p in r.prompts) / len(r.prompts)
            for r in requests
        ]

    before = mean_logprob()
    delta = apply_memit(model, requests, MemitParams(layers=LAYERS, lam=1.0), _stats(model))
    after = mean_logprob()
    assert all(a > b + 2.0 for a, b in zip(after, before, strict=True)), (before, after)
    assert [layer.path for layer in delta.layers] == [
        "transformer.h.1.mlp.c_proj",
        "transformer.h.2.mlp.c_proj",
    ]
    assert all(layer.left is not None and layer.left.shape == (32, 4) for layer in delta.layers)

    undo(model, delta)
    assert all_equal(model, snapshot)


def test_memit_needs_statistics_for_every_layer(gpt2: GPT2LMHeadModel) -> None:
    with pytest.raises(WhiteboxError, match=r"layers \[2\]"):
        apply_memit(
            gpt2,
            [edit_request((11, 12), (7,))],
            MemitParams(layers=LAYERS),
            {1: identity_second_moment(128)},
        )


def test_memit_restores_the_model_when_a_later_layer_fails(gpt2: GPT2LMHeadModel) -> None:
    snapshot = parameters_snapshot(gpt2)
    stats = {1: identity_second_moment(128), 2: identity_second_moment(7)}  # wrong size
    with pytest.raises(WhiteboxError, match=r"C \(128, 128\)"):
        apply_memit(gpt2, [edit_request((11, 12), (7,))], MemitParams(layers=LAYERS), stats)
    assert all_equal(gpt2, snapshot)
