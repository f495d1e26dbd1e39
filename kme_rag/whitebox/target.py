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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.hooks import capture, replace_output
from kme_rag.whitebox.prompts import EditRequest, eval_mode, model_device, pad_batch

__all__ = ["TargetParams", "optimise_delta"]


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


def _target_nll(logits: torch.Tensor, batch: _Batch) -> torch.Tensor:
    """Mean over prompts of the mean NLL of the target tokens."""
    rows = torch.arange(batch.n_rewrite, device=logits.device)[:, None]  # (n, 1)
    picked = logits[rows, batch.target_pos].float()  # (n, T, V)
    logp = picked.log_softmax(-1).gather(-1, batch.target_ids[..., None])[..., 0]  # (n, T)
    return -logp.mean(1).mean()


def _essence_logprobs(logits: torch.Tensor, batch: _Batch) -> torch.Tensor:
    """Next-token log-probs at the subject's last token of each essence row, (m, V)."""
    rows = torch.arange(batch.n_rewrite, logits.shape[0], device=logits.device)
    return logits[rows, batch.lookup[batch.n_rewrite :]].float().log_softmax(-1)


def _kl(
    logits: torch.Tensor, batch: _Batch, essence_init: torch.Tensor | None, factor: float
) -> torch.Tensor:
    """``factor`` · KL(p₀ ‖ p_δ) at the essence rows; 0 when the request has none."""
    if essence_init is None:
        return logits.new_zeros(())
    current = _essence_logprobs(logits, batch)
    kl = F.kl_div(current, essence_init, log_target=True, reduction="batchmean")
    return factor * kl


def optimise_delta(
    model: nn.Module, module: nn.Module, request: EditRequest, params: TargetParams
) -> torch.Tensor:
    """δ (d_out,), float32: added to ``module``'s output at the subject, it yields the target.

    The model's weights and mode are unchanged on return; only δ is optimised.
    """
    device = model_device(model)
    batch = _batch(request, device)
    b, t = batch.input_ids.shape
    at_subject = torch.zeros(b, t, 1, device=device)
    at_subject[torch.arange(b, device=device), batch.lookup] = 1.0

    with eval_mode(model):
        with torch.no_grad(), capture(module, input=False) as seen:
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        assert seen.output is not None
        h = seen.output[torch.arange(b, device=device), batch.lookup][: batch.n_rewrite]  # (n, d)
        h_norm = h.float().mean(0).norm()
        essence_init = _essence_logprobs(logits, batch) if request.essence else None

        delta = torch.zeros(h.shape[-1], device=device, requires_grad=True)
        optimiser = torch.optim.Adam([delta], lr=params.lr)

        def add_delta(out: torch.Tensor) -> torch.Tensor:
            return out + (at_subject * delta).to(out.dtype)  # (b, t, d)

        with replace_output(module, add_delta):
            for _ in range(params.steps):
                out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
                nll = _target_nll(out.logits, batch)
                if nll.item() < params.early_stop_nll:
                    break
                loss = nll + _kl(out.logits, batch, essence_init, params.kl_factor)
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
