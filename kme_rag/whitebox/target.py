"""Target values by optimisation: what, added at the subject, makes the new object likely.

Shared by ROME (added to the edited projection's output) and MEMIT (added to the last edited
layer's output, the residual stream). The loss is ROME's, in its order:

    L(δ) = NLL(target | prompts)                              make the new object likely
         + kl_factor · KL(p₀ ‖ p_δ) on the essence prompts    keep what the subject *is*
         + weight_decay · ‖δ‖ / ‖h‖²                          keep δ small

where ``h`` is the unedited activation at the subject (averaged over prompts), and after each
Adam step ``‖δ‖`` is clamped to ``clamp_norm_factor · ‖h‖``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import architecture_of, get_module
from kme_rag.whitebox.hooks import capture, replace_output
from kme_rag.whitebox.prompts import EditRequest, eval_mode, model_device, pad_batch

__all__ = ["TargetParams", "logits_at", "optimise_delta"]


@dataclass(frozen=True, kw_only=True)
class TargetParams:
    """How the target value is optimised; defaults are ROME's GPT-2 XL hyper-parameters."""

    lr: float = 0.5
    steps: int = 20
    kl_factor: float = 0.0625
    weight_decay: float = 0.5
    clamp_norm_factor: float = 4.0
    early_stop_nll: float = 0.05  # stop once the mean target NLL is below this

    def __post_init__(self) -> None:
        if self.steps < 1 or self.lr <= 0:
            raise WhiteboxError(f"expected steps >= 1 and lr > 0, got {self.steps}, {self.lr}")


@dataclass(frozen=True)
class _Batch:
    """Rewrite rows (prompt + target[:-1]) then essence rows, right-padded."""

    input_ids: torch.Tensor  # (b, t)
    attention_mask: torch.Tensor  # (b, t)
    lookup: torch.Tensor  # (b,) subject-last index of each row
    target_pos: torch.Tensor  # (n, T) positions whose next token is target[j]
    target_ids: torch.Tensor  # (n, T)
    n_rewrite: int


def _batch(request: EditRequest, device: torch.device) -> _Batch:
    target = list(request.target_ids)
    rewrite = [list(p.input_ids) + target[:-1] for p in request.prompts]
    essence = [list(p.input_ids) for p in request.essence]
    input_ids, mask = pad_batch(rewrite + essence, device)
    lookup = [p.subject_last for p in (*request.prompts, *request.essence)]
    positions = [[len(p.input_ids) - 1 + j for j in range(len(target))] for p in request.prompts]
    n = len(request.prompts)
    return _Batch(
        input_ids=input_ids,
        attention_mask=mask,
        lookup=torch.tensor(lookup, device=device),
        target_pos=torch.tensor(positions, device=device),
        target_ids=torch.tensor(target, device=device).expand(n, len(target)),
        n_rewrite=n,
    )


def _softcap(model: nn.Module) -> float | None:
    """The final-logit soft-capping of the model's config (Gemma 2 style), if any."""
    config = getattr(model, "config", None)
    for cfg in (config, getattr(config, "text_config", None)):
        cap = getattr(cfg, "final_logit_softcapping", None)
        if cap:
            return float(cap)
    return None


def logits_at(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    rows: torch.Tensor,
    positions: torch.Tensor,
) -> torch.Tensor:
    """Next-token logits ``(m, V)`` at the ``m`` places ``(rows[i], positions[i])`` only.

    The decoder stack runs on the whole batch and the LM head only where it is read: on a
    small model with a large vocabulary (Gemma 3 270M: 262k x 640) the head costs more per
    position than all decoder layers together.
    """
    arch = architecture_of(model)
    out = get_module(model, arch.body)(input_ids=input_ids, attention_mask=attention_mask)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]  # (b, t, d)
    logits = get_module(model, arch.lm_head)(hidden[rows, positions])  # (m, V)
    cap = _softcap(model)
    return torch.tanh(logits / cap) * cap if cap else logits


@dataclass(frozen=True)
class _Places:
    """Where :func:`optimise_delta` reads logits: every target token, then the essences."""

    rows: torch.Tensor  # (n*T + m,)
    positions: torch.Tensor  # (n*T + m,)
    n_target: int  # n*T


def _places(batch: _Batch) -> _Places:
    n, t = batch.target_pos.shape
    device = batch.target_pos.device
    rows = torch.arange(n, device=device).repeat_interleave(t)  # (n*T,)
    essence_rows = torch.arange(n, batch.input_ids.shape[0], device=device)  # (m,)
    return _Places(
        rows=torch.cat([rows, essence_rows]),
        positions=torch.cat([batch.target_pos.reshape(-1), batch.lookup[n:]]),
        n_target=n * t,
    )


def _target_nll(logits: torch.Tensor, batch: _Batch, places: _Places) -> torch.Tensor:
    """Mean over prompts of the mean NLL of the target tokens."""
    n, t = batch.target_ids.shape
    picked = logits[: places.n_target].float().reshape(n, t, -1)  # (n, T, V)
    logp = picked.log_softmax(-1).gather(-1, batch.target_ids[..., None])[..., 0]  # (n, T)
    return -logp.mean(1).mean()


def _essence_logprobs(logits: torch.Tensor, places: _Places) -> torch.Tensor:
    """Next-token log-probs at the subject's last token of each essence row, (m, V)."""
    return logits[places.n_target :].float().log_softmax(-1)


def _kl(
    logits: torch.Tensor, places: _Places, essence_init: torch.Tensor | None, factor: float
) -> torch.Tensor:
    """``factor`` · KL(p₀ ‖ p_δ) at the essence rows; 0 when the request has none."""
    if essence_init is None:
        return logits.new_zeros(())
    current = _essence_logprobs(logits, places)
    kl = F.kl_div(current, essence_init, log_target=True, reduction="batchmean")
    return factor * kl


@contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """No parameter requires grad inside the block (only δ is optimised); restored after."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)


def optimise_delta(
    model: nn.Module, module: nn.Module, request: EditRequest, params: TargetParams
) -> torch.Tensor:
    """δ (d_out,), float32: added to ``module``'s output at the subject, it yields the target.

    The model's weights and mode are unchanged on return; only δ is optimised.
    """
    device = model_device(model)
    batch = _batch(request, device)
    places = _places(batch)
    b, t = batch.input_ids.shape
    at_subject = torch.zeros(b, t, 1, device=device)
    at_subject[torch.arange(b, device=device), batch.lookup] = 1.0

    def forward() -> torch.Tensor:
        ids, mask = batch.input_ids, batch.attention_mask
        return logits_at(model, ids, mask, places.rows, places.positions)  # (n*T + m, V)

    with eval_mode(model), _frozen(model):
        with torch.no_grad(), capture(module, input=False) as seen:
            logits = forward()
        assert seen.output is not None
        h = seen.output[torch.arange(b, device=device), batch.lookup][: batch.n_rewrite]  # (n, d)
        h_norm = h.float().mean(0).norm()
        essence_init = _essence_logprobs(logits, places) if request.essence else None

        delta = torch.zeros(h.shape[-1], device=device, requires_grad=True)
        optimiser = torch.optim.Adam([delta], lr=params.lr)

        def add_delta(out: torch.Tensor) -> torch.Tensor:
            return out + (at_subject * delta).to(out.dtype)  # (b, t, d)

        with replace_output(module, add_delta):
            for _ in range(params.steps):
                logits = forward()
                nll = _target_nll(logits, batch, places)
                if nll.item() < params.early_stop_nll:
                    break
                loss = nll + _kl(logits, places, essence_init, params.kl_factor)
                loss = loss + params.weight_decay * delta.norm() / h_norm**2
                (delta.grad,) = torch.autograd.grad(loss, [delta])  # no grads on the weights
                optimiser.step()
                _clamp_(delta, params.clamp_norm_factor * h_norm)
    return delta.detach()


@torch.no_grad()
def _clamp_(delta: torch.Tensor, max_norm: torch.Tensor) -> None:
    """Scale ``delta`` in place down to ``max_norm`` when it is longer."""
    norm = delta.norm()
    if norm > max_norm:
        delta.mul_(max_norm / norm)
