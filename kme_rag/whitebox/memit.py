"""MEMIT: many facts at once, spread over a range of MLP layers (Meng et al., 2023).

In paper order:

1. Target residuals: for each edit i, z_i = h_L + δ_i, where h_L is the last edited layer's
   output at the subject's last token (averaged over prompts) and δ_i is optimised as in ROME
   (:func:`kme_rag.whitebox.target.optimise_delta`, on the layer's output). Where a norm
   sits between the MLP and the residual stream (Gemma 3; the table's
   ``mlp_adds_to_residual``), the target lives in the projection's output space instead and
   exactly one layer is edited: a normalised MLP output cannot add an arbitrary residual.
2. For each layer l of the range, first to last, with the earlier layers already edited:
   K = the edits' keys at l (d_in x n), R = (z - current h_L) / (layers left, l included),
   and Δ_l = R Kᵀ (λ C_l + K Kᵀ)⁻¹ (:func:`memit_layer_update`), which minimises
   ‖Δ K - R‖² + λ tr(Δ C_l Δᵀ) (the normal equations Δ(λC_l + KKᵀ) = R Kᵀ).

Δ_l is stored in factored form ``R (A⁻¹K)ᵀ`` with A = λC_l + KKᵀ: rank ≤ n, and never
an explicit inverse — one ``torch.linalg.solve`` in float64 per layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import Architecture, architecture_of, get_module
from kme_rag.whitebox.delta import LayerDelta, WeightDelta, apply_delta, undo
from kme_rag.whitebox.prompts import EditRequest, values_at_subject
from kme_rag.whitebox.second_moments import SecondMoment
from kme_rag.whitebox.target import TargetParams, optimise_delta
from kme_rag.whitebox.targetcache import TargetCache

__all__ = ["MemitParams", "apply_memit", "memit_layer_update", "target_path"]


@dataclass(frozen=True, kw_only=True)
class MemitParams(TargetParams):
    """MEMIT's knobs: the layer range, λ (``lam``), and how the targets are optimised.

    Defaults follow MEMIT's GPT-J setting: λ = 15,000, δ clamped to 0.75 ‖h‖ (the residual
    stream is much longer than one MLP output, hence the smaller factor than ROME's 4).
    """

    layers: tuple[int, ...]
    lam: float = 15000.0
    clamp_norm_factor: float = 0.75

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.layers or list(self.layers) != sorted(set(self.layers)):
            raise WhiteboxError(f"expected distinct increasing layers, got {self.layers}")
        if self.lam < 0:
            raise WhiteboxError(f"expected lam >= 0, got {self.lam}")


def memit_layer_update(
    keys: torch.Tensor, residuals: torch.Tensor, second_moment: torch.Tensor, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(left, right), float64, with Δ = left @ rightᵀ = R Kᵀ (λC + KKᵀ)⁻¹.

    ``keys`` K is (d_in, n), ``residuals`` R is (d_out, n), C is (d_in, d_in). Then
    left = R (d_out, n) and right = (λC + KKᵀ)⁻¹ K (d_in, n); A is symmetric, so
    left @ rightᵀ = R Kᵀ A⁻¹ and Δ A = R Kᵀ.
    """
    d_in, n = keys.shape
    if residuals.shape[1] != n or second_moment.shape != (d_in, d_in):
        raise WhiteboxError(
            f"expected R (d_out, {n}) and C ({d_in}, {d_in}), "
            f"got {tuple(residuals.shape)} and {tuple(second_moment.shape)}"
        )
    k = keys.double()
    a = lam * second_moment.to(k) + k @ k.T  # (d_in, d_in)
    right = torch.linalg.solve(a, k)  # A⁻¹K, (d_in, n)
    return residuals.to(k), right


def _mean_per_request(
    model: nn.Module,
    module: nn.Module,
    requests: Sequence[EditRequest],
    want: Literal["input", "output"],
) -> torch.Tensor:
    """The module's input or output at the subject, averaged over each request's prompts, (d, n)."""
    prompts = [p for r in requests for p in r.prompts]
    values = values_at_subject(model, module, prompts, want=want)  # (Σ prompts, d)
    groups = torch.split(values, [len(r.prompts) for r in requests])  # n x (prompts_i, d)
    return torch.stack([g.mean(0) for g in groups], dim=1)  # (d, n)


def _targets(
    model: nn.Module,
    path: str,
    requests: Sequence[EditRequest],
    params: MemitParams,
    cache: TargetCache | None,
) -> torch.Tensor:
    """z (d, n): the output of the module at ``path`` at each subject plus that edit's δ."""
    last = get_module(model, path)
    h = _mean_per_request(model, last, requests, "output")  # (d, n)
    if cache is None:
        deltas = [optimise_delta(model, last, r, params) for r in requests]
    else:
        deltas = [cache.optimise(model, path, r, params) for r in requests]
    return h + torch.stack(deltas, dim=1).to(h)


def _check_layers_and_stats(
    arch: Architecture, model: nn.Module, params: MemitParams, stats: Mapping[int, SecondMoment]
) -> None:
    depth = arch.num_layers(model)
    if params.layers[-1] >= depth or params.layers[0] < 0:
        raise WhiteboxError(f"expected layers in [0, {depth}), got {params.layers}")
    missing = [layer for layer in params.layers if layer not in stats]
    if missing:
        raise WhiteboxError(f"no second-moment statistics for layers {missing}")


def target_path(arch: Architecture, params: MemitParams) -> str:
    """Where the targets z live: the last layer's output, or its projection's output."""
    if arch.mlp_adds_to_residual:
        return arch.layer_path(params.layers[-1])
    if len(params.layers) != 1:
        raise WhiteboxError(
            f"{arch.model_type} normalises each MLP's output before the residual stream, so "
            f"MEMIT cannot spread one target over layers {params.layers}: give one layer"
        )
    return arch.projection_path(params.layers[0])


def apply_memit(
    model: nn.Module,
    requests: Sequence[EditRequest],
    params: MemitParams,
    stats: Mapping[int, SecondMoment],
    *,
    cache: TargetCache | None = None,
) -> WeightDelta:
    """Write all ``requests`` into ``params.layers`` in one batch; return the applied delta.

    ``cache`` (optional) keeps the optimised δs, keyed by the weights they were optimised on.
    ``stats`` maps each layer to its C. On return the model is edited and
    :func:`kme_rag.whitebox.delta.undo` restores it exactly; if anything fails midway the
    layers already edited are restored before the error propagates.
    """
    if not requests:
        raise WhiteboxError("expected at least one edit request, got none")
    arch = architecture_of(model)
    _check_layers_and_stats(arch, model, params, stats)
    where = target_path(arch, params)
    last = get_module(model, where)
    z = _targets(model, where, requests, params, cache)  # (d, n)
    applied: list[WeightDelta] = []
    try:
        for i, layer in enumerate(params.layers):
            path = arch.projection_path(layer)
            keys = _mean_per_request(model, get_module(model, path), requests, "input")
            current = _mean_per_request(model, last, requests, "output")  # (d, n)
            residuals = (z - current) / (len(params.layers) - i)
            left, right = memit_layer_update(keys, residuals, stats[layer].matrix, params.lam)
            step = WeightDelta("memit", (LayerDelta(path, left=left, right=right),))
            applied.append(apply_delta(model, step))
    except BaseException:
        for step in reversed(applied):
            undo(model, step)
        raise
    return WeightDelta(
        method="memit",
        layers=tuple(layer for step in applied for layer in step.layers),
        originals={k: v for step in applied for k, v in step.originals.items()},
        edited_sha={k: v for step in applied for k, v in step.edited_sha.items()},
    )
