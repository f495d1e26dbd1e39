from __future__ import annotations

import pytest
import torch
from transformers import GPT2LMHeadModel, LlamaForCausalLM

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import read_projection
from kme_rag.whitebox.delta import undo
from kme_rag.whitebox.hooks import capture
from kme_rag.whitebox.rome import (
    RomeParams,
    apply_rome,
    rank_one_update,
    subject_key,
    target_value,
)
from kme_rag.whitebox.second_moments import (
    SecondMoment,
    corpus_second_moment,
    identity_second_moment,
    token_windows,
)
from tests.whitebox.tiny import all_equal, edit_request, parameters_snapshot, target_logprob

SUBJECT, TARGET = (11, 12, 13), (7,)


def _spd(n: int, gen: torch.Generator) -> torch.Tensor:
    a = torch.randn(n, n, generator=gen, dtype=torch.float64)
    return a @ a.T / n + 0.1 * torch.eye(n, dtype=torch.float64)


@pytest.mark.parametrize("identity", [True, False])
def test_rank_one_update_maps_k_star_to_v_star_and_bounds_other_keys(identity: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(6, 10, generator=gen, dtype=torch.float64)
    c = torch.eye(10, dtype=torch.float64) if identity else _spd(10, gen)
    k_star = torch.randn(10, generator=gen, dtype=torch.float64)
    v_star = torch.randn(6, generator=gen, dtype=torch.float64)
    u, v = rank_one_update(w, c, k_star, v_star)
    edited = w + torch.outer(u, v)
    assert torch.allclose(edited @ k_star, v_star, atol=1e-10)

    c_inv_k = torch.linalg.solve(c, k_star)
    scale = (v_star - w @ k_star).norm() / (k_star @ c_inv_k)
    for k in torch.randn(20, 10, generator=gen, dtype=torch.float64):
        change = (edited @ k - w @ k).norm()
        assert change <= (c_inv_k @ k).abs() * scale + 1e-10
        orthogonal = k - (c_inv_k @ k) / (c_inv_k @ c_inv_k) * c_inv_k  # ⟨C⁻¹k*, k⟩ = 0
        assert torch.allclose(edited @ orthogonal, w @ orthogonal, atol=1e-10)


def test_rank_one_update_checks_shapes() -> None:
    with pytest.raises(WhiteboxError, match="expected C"):
        rank_one_update(torch.ones(3, 4), torch.eye(3), torch.ones(4), torch.ones(3))
    with pytest.raises(WhiteboxError, match=r"expected v\*"):
        rank_one_update(torch.ones(3, 4), torch.eye(4), torch.ones(4), torch.ones(4))


def test_subject_key_averages_the_inputs_at_the_subject(gpt2: GPT2LMHeadModel) -> None:
    request = edit_request(SUBJECT, TARGET, n_prefixes=3)
    proj = gpt2.transformer.h[1].mlp.c_proj
    by_hand = []
    for prompt in request.prompts:
        with torch.no_grad(), capture(proj) as seen:
            gpt2(input_ids=torch.tensor([prompt.input_ids]))
        assert seen.input is not None
        by_hand.append(seen.input[0, prompt.subject_last])
    expected = torch.stack(by_hand).mean(0)
    assert torch.allclose(subject_key(gpt2, proj, request.prompts), expected, atol=1e-6)


def test_target_value_leaves_the_model_unchanged(gpt2: GPT2LMHeadModel) -> None:
    gpt2.train()
    snapshot = parameters_snapshot(gpt2)
    proj = gpt2.transformer.h[1].mlp.c_proj
    request = edit_request(SUBJECT, TARGET)
    v_star = target_value(
        gpt2, proj, request, subject_key(gpt2, proj, request.prompts), RomeParams(layer=1)
    )
    assert v_star.shape == (32,) and gpt2.training and all_equal(gpt2, snapshot)
    assert all(p.grad is None for p in gpt2.parameters())


def test_the_update_uses_the_same_key_as_the_optimisation(gpt2: GPT2LMHeadModel) -> None:
    """R-ROME: after the edit the projection maps the averaged k* exactly to v*."""
    proj = gpt2.transformer.h[1].mlp.c_proj
    request, params = edit_request(SUBJECT, TARGET), RomeParams(layer=1)
    k_star = subject_key(gpt2, proj, request.prompts)
    v_star = target_value(gpt2, proj, request, k_star, params)
    apply_rome(gpt2, request, params, identity_second_moment(128))
    assert torch.allclose(subject_key(gpt2, proj, request.prompts), k_star)  # upstream unchanged
    edited = read_projection(proj).double() @ k_star.double()
    assert torch.allclose(edited, v_star, rtol=1e-4, atol=1e-4)


def _corpus_stats(model: torch.nn.Module, proj: torch.nn.Module) -> SecondMoment:
    ids = torch.randint(0, 128, (400,), generator=torch.Generator().manual_seed(1)).tolist()
    matrix, tokens = corpus_second_moment(model, proj, token_windows(ids, 16, 8), samples=25)
    return SecondMoment(matrix, "corpus", tokens)


@pytest.mark.parametrize("with_corpus_stats", [False, True])
def test_rome_end_to_end_on_tiny_gpt2(gpt2: GPT2LMHeadModel, with_corpus_stats: bool) -> None:
    request = edit_request(SUBJECT, TARGET)
    proj = gpt2.transformer.h[1].mlp.c_proj
    stats = _corpus_stats(gpt2, proj) if with_corpus_stats else identity_second_moment(128)
    probe = torch.tensor([request.prompts[3].input_ids, (70, 71, 72, 73, 74, 75)])
    with torch.no_grad():
        logits_before = gpt2(input_ids=probe).logits
    before = [target_logprob(gpt2, p, TARGET) for p in request.prompts]
    snapshot = parameters_snapshot(gpt2)

    delta = apply_rome(gpt2, request, RomeParams(layer=1), stats)

    after = [target_logprob(gpt2, p, TARGET) for p in request.prompts]
    assert all(a > b + 2.0 for a, b in zip(after, before, strict=True)), (before, after)
    for prompt in request.prompts:
        with torch.no_grad():
            logits = gpt2(input_ids=torch.tensor([prompt.input_ids])).logits
        assert int(logits[0, -1].argmax()) == TARGET[0]
    assert [layer.path for layer in delta.layers] == ["transformer.h.1.mlp.c_proj"]

    undo(gpt2, delta)
    assert all_equal(gpt2, snapshot)
    with torch.no_grad():
        assert torch.equal(gpt2(input_ids=probe).logits, logits_before)


def test_rome_end_to_end_on_tiny_llama(llama: LlamaForCausalLM) -> None:
    request = edit_request(SUBJECT, TARGET, seed=1)
    before = [target_logprob(llama, p, TARGET) for p in request.prompts]
    snapshot = parameters_snapshot(llama)
    delta = apply_rome(llama, request, RomeParams(layer=1), identity_second_moment(64))
    after = [target_logprob(llama, p, TARGET) for p in request.prompts]
    assert sum(after) / len(after) > sum(before) / len(before) + 2.0, (before, after)
    undo(llama, delta)
    assert all_equal(llama, snapshot)


def test_rome_rejects_a_layer_outside_the_model(gpt2: GPT2LMHeadModel) -> None:
    with pytest.raises(WhiteboxError, match=r"layer in \[0, 3\)"):
        apply_rome(
            gpt2, edit_request(SUBJECT, TARGET), RomeParams(layer=3), identity_second_moment(128)
        )
