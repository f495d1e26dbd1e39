"""ROME: a rank-one update of one MLP output projection (Meng et al., 2022), in paper order.

1. :func:`subject_key` — k*, the projection's input at the subject's last token, averaged
   over context-prefixed prompts.
2. :func:`target_value` — v* = W k* + δ, with δ optimised so that the new object follows
   the prompts (:func:`kme_rag.whitebox.target.optimise_delta`).
3. :func:`rank_one_update` — the closed form Δ = (v* - W k*)(C⁻¹k*)ᵀ / (k*ᵀC⁻¹k*), the
   smallest change (in the C-weighted sense) with (W + Δ) k* = v*.
4. :func:`apply_rome` — all three on a model, returning the applied :class:`WeightDelta`.

The R-ROME fix (Gupta et al., 2024) is built in: the *same* averaged k* is used to form v*
and in the update. ROME's original code used the un-prefixed prompt's key in step 3, which
occasionally produced "disabling" edits that wreck the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import architecture_of, get_module, read_projection
from kme_rag.whitebox.delta import LayerDelta, WeightDelta, apply_delta
from kme_rag.whitebox.prompts import EditRequest, TokenizedPrompt, values_at_subject
from kme_rag.whitebox.second_moments import SecondMoment
from kme_rag.whitebox.target import TargetParams, optimise_delta
from kme_rag.whitebox.targetcache import TargetCache

__all__ = ["RomeParams", "apply_rome", "rank_one_update", "subject_key", "target_value"]


@dataclass(frozen=True, kw_only=True)
class RomeParams(TargetParams):
    """ROME's knobs: the edited layer, plus how v* is optimised (:class:`TargetParams`)."""

    layer: int


def subject_key(
    model: nn.Module, projection: nn.Module, prompts: Sequence[TokenizedPrompt]
) -> torch.Tensor:
    """k* (d_in,), float32: the projection's input at the subject's last token, averaged.

    The model is unchanged on return.
    """
    keys = values_at_subject(model, projection, prompts, want="input")  # (n, d_in)
    return keys.mean(0)


def target_value(
    model: nn.Module,
    projection: nn.Module,
    request: EditRequest,
    k_star: torch.Tensor,
    params: TargetParams,
    *,
    cache: tuple[TargetCache, str] | None = None,
) -> torch.Tensor:
    """v* (d_out,), float64: W k* plus the optimised δ; the model is unchanged on return.

    ``cache``: a target cache and the projection's path in the model, to reuse a stored δ.
    """
    if cache is None:
        delta = optimise_delta(model, projection, request, params)  # (d_out,)
    else:
        delta = cache[0].optimise(model, cache[1], request, params)
    weight = read_projection(projection).detach().double()  # (out, in)
    return weight @ k_star.to(weight) + delta.to(weight)


def rank_one_update(
    weight: torch.Tensor, second_moment: torch.Tensor, k_star: torch.Tensor, v_star: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, v), float64, with Δ = u vᵀ such that (W + Δ) k* = v*.

    u = v* - W k* (out,), v = C⁻¹k* / (k*ᵀ C⁻¹ k*) (in,). For any key k the output moves by
    u · ⟨C⁻¹k*, k⟩ / (k*ᵀC⁻¹k*): keys C⁻¹-orthogonal to k* are untouched.
    """
    out_dim, in_dim = weight.shape
    if second_moment.shape != (in_dim, in_dim) or k_star.shape != (in_dim,):
        raise WhiteboxError(
            f"expected C ({in_dim}, {in_dim}) and k* ({in_dim},) for W {tuple(weight.shape)}, "
            f"got {tuple(second_moment.shape)} and {tuple(k_star.shape)}"
        )
    if v_star.shape != (out_dim,):
        raise WhiteboxError(f"expected v* ({out_dim},), got {tuple(v_star.shape)}")
    w = weight.detach().double()
    k = k_star.to(w)
    c_inv_k = torch.linalg.solve(second_moment.to(w), k)  # C⁻¹k*, (in,)
    u = v_star.to(w) - w @ k
    v = c_inv_k / (k @ c_inv_k)
    return u, v


def apply_rome(
    model: nn.Module,
    request: EditRequest,
    params: RomeParams,
    stats: SecondMoment,
    *,
    cache: TargetCache | None = None,
) -> WeightDelta:
    """Write one fact into ``params.layer``'s projection; return the applied delta.

    ``cache`` (optional) keeps the optimised δ of v*, keyed by the weights it was optimised on.

    On return the model is edited; :func:`kme_rag.whitebox.delta.undo` restores it exactly.
    """
    arch = architecture_of(model)
    if not 0 <= params.layer < arch.num_layers(model):
        raise WhiteboxError(
            f"expected a layer in [0, {arch.num_layers(model)}), got {params.layer}"
        )
    path = arch.projection_path(params.layer)
    projection = get_module(model, path)
    k_star = subject_key(model, projection, request.prompts)
    where = None if cache is None else (cache, path)
    v_star = target_value(model, projection, request, k_star, params, cache=where)
    u, v = rank_one_update(read_projection(projection), stats.matrix, k_star, v_star)
    delta = WeightDelta("rome", (LayerDelta(path, left=u[:, None], right=v[:, None]),))
    return apply_delta(model, delta)
