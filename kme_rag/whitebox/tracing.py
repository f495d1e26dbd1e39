"""Causal tracing (Meng et al., 2022): where along the depth does the model recall a fact?

Corrupt-and-restore, in the paper's order:

1. **clean run** — the prompt as is; the answer is the clean top token (or a given one);
2. **corrupted run** — Gaussian noise added to the subject's token embeddings
   (``noise_scale`` times the embeddings' standard deviation; ROME uses 3), several samples
   from a fixed seed; the answer's probability drops;
3. **restored runs** — the corrupted run again, with one layer's clean state copied back at
   the subject's last token; the probability regained is that state's *indirect effect*.

Two states are restored per layer: the decoder block's output (the residual stream) and
the MLP's output projection alone (the table's ``projection``). Row 0 of every batch is the
clean run and rows 1.. the noise samples, so the clean state to restore is computed in the
same forward pass (ROME's trick). The model is unchanged on return and no hook remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import architecture_of, get_module
from kme_rag.whitebox.edit_requests import locate_subject
from kme_rag.whitebox.hooks import replace_output
from kme_rag.whitebox.prompts import eval_mode, model_device

__all__ = [
    "CausalTrace",
    "TraceParams",
    "causal_trace",
    "embedding_std",
    "render_trace",
    "trace_prompt",
]

Site = Literal["layer", "mlp"]
_STD_SAMPLE = 4096  # vocabulary rows the embedding std is measured on


@dataclass(frozen=True, kw_only=True)
class TraceParams:
    """How the subject is corrupted, and how many MLPs are restored at once.

    ``window``: the MLP trace restores the MLP outputs of this many consecutive layers
    centred on each layer (ROME: 10, on 48-layer GPT-2 XL); 1 restores the layer's alone.
    The block trace always restores one block: its output already carries all below it.
    """

    samples: int = 10
    noise_scale: float = 3.0
    seed: int = 0
    window: int = 1

    def __post_init__(self) -> None:
        if self.samples < 1 or self.window < 1 or self.noise_scale < 0:
            raise WhiteboxError(
                f"expected samples >= 1, window >= 1, noise_scale >= 0, got {self.samples}, "
                f"{self.window}, {self.noise_scale}"
            )


@dataclass(frozen=True)
class CausalTrace:
    """P(answer) on the clean, corrupted and restored runs; one entry per layer."""

    answer: int  # token id whose probability is measured
    subject: tuple[int, int]  # inclusive token range that was corrupted
    noise_std: float
    clean: float
    corrupted: float  # mean over the noise samples
    layer: tuple[float, ...]  # block output restored at the subject's last token
    mlp: tuple[float, ...]  # MLP output projection (a window of them) restored there

    def effects(self, site: Site) -> tuple[float, ...]:
        """Indirect effect per layer: restored probability minus the corrupted one."""
        restored = self.layer if site == "layer" else self.mlp
        return tuple(p - self.corrupted for p in restored)

    def peak(self, site: Site) -> int:
        """The layer with the largest indirect effect at ``site``."""
        effects = self.effects(site)
        return max(range(len(effects)), key=effects.__getitem__)


@torch.no_grad()
def embedding_std(embedding: nn.Module) -> float:
    """Standard deviation of the embedding module's *output* (scaled embeddings included).

    Measured on up to 4096 evenly spaced vocabulary ids, so it is deterministic and cheap.
    """
    table = _embedding(embedding)
    rows = table.num_embeddings
    ids = torch.linspace(0, rows - 1, min(rows, _STD_SAMPLE), device=table.weight.device)
    return float(table(ids.long()).float().std())


def _embedding(module: nn.Module) -> nn.Embedding:
    if not isinstance(module, nn.Embedding):
        raise WhiteboxError(f"expected an nn.Embedding, got {type(module).__name__}")
    return module


def _window(layer: int, width: int, num_layers: int) -> range:
    """Layers ``[layer - width // 2, layer + ceil(width / 2))`` inside the model (ROME's)."""
    return range(max(0, layer - width // 2), min(num_layers, layer - (-width // 2)))


def _site_modules(model: nn.Module, site: Site, layers: range) -> list[nn.Module]:
    arch = architecture_of(model)
    path = arch.layer_path if site == "layer" else arch.projection_path
    return [get_module(model, path(i)) for i in layers]


def _last_probs(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Next-token probabilities at the last position of each row, (b, V)."""
    logits: torch.Tensor = model(input_ids=ids).logits[:, -1]  # (b, V)
    return logits.float().softmax(-1)


def _restored(
    model: nn.Module, ids: torch.Tensor, modules: Sequence[nn.Module], position: int, answer: int
) -> float:
    """Mean P(answer) over the noisy rows with each module's clean output copied back."""

    def restore(out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[1:, position] = out[0, position]  # (b-1, d) ← clean row's state
        return out

    with ExitStack() as stack:
        for module in modules:
            stack.enter_context(replace_output(module, restore))
        probs = _last_probs(model, ids)[:, answer]  # (b,)
    return float(probs[1:].mean())


def _restored_per_layer(
    model: nn.Module, ids: torch.Tensor, site: Site, window: int, position: int, answer: int
) -> tuple[float, ...]:
    """:func:`_restored` for each layer's ``site`` (with its window of neighbours)."""
    num_layers = architecture_of(model).num_layers(model)
    return tuple(
        _restored(
            model, ids, _site_modules(model, site, _window(i, window, num_layers)), position, answer
        )
        for i in range(num_layers)
    )


@torch.no_grad()
def causal_trace(
    model: nn.Module,
    input_ids: Sequence[int],
    subject: tuple[int, int],
    params: TraceParams | None = None,
    *,
    answer: int | None = None,
) -> CausalTrace:
    """Trace one prompt whose subject spans tokens ``subject`` (inclusive); see the module.

    The model is unchanged on return, and no hook remains attached.
    """
    params = params or TraceParams()
    first, last = subject
    if not 0 <= first <= last < len(input_ids):
        raise WhiteboxError(
            f"expected a subject range inside {len(input_ids)} tokens, got {subject}"
        )
    embedding = _embedding(get_module(model, architecture_of(model).embedding))
    device = model_device(model)
    noise_std = params.noise_scale * embedding_std(embedding)

    gen = torch.Generator().manual_seed(params.seed)
    shape = (params.samples, last - first + 1, embedding.embedding_dim)
    noise = torch.randn(shape, generator=gen) * noise_std
    noise = noise.to(device)  # (samples, subject tokens, d)

    def corrupt(out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[1:, first : last + 1] += noise.to(out.dtype)  # rows 1.. only; row 0 stays clean
        return out

    ids = torch.tensor([list(input_ids)] * (1 + params.samples), device=device)  # (1+S, t)
    with eval_mode(model), replace_output(embedding, corrupt):
        probs = _last_probs(model, ids)  # (1+S, V)
        answer = int(probs[0].argmax()) if answer is None else answer
        base = probs[:, answer]
        layer = _restored_per_layer(model, ids, "layer", 1, last, answer)
        mlp = _restored_per_layer(model, ids, "mlp", params.window, last, answer)
    return CausalTrace(
        answer=answer,
        subject=(first, last),
        noise_std=noise_std,
        clean=float(base[0]),
        corrupted=float(base[1:].mean()),
        layer=layer,
        mlp=mlp,
    )


def trace_prompt(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    subject: str,
    params: TraceParams | None = None,
) -> CausalTrace:
    """:func:`causal_trace` on a text prompt, with the subject found by its characters."""
    span = locate_subject(tokenizer, prompt, subject)
    return causal_trace(model, span.input_ids, (span.first, span.last), params)


def render_trace(trace: CausalTrace, *, width: int = 40) -> str:
    """A text table: per layer, the indirect effect of the block and of the MLP, with bars."""
    layer, mlp = trace.effects("layer"), trace.effects("mlp")
    scale = max(1e-12, *(abs(e) for e in (*layer, *mlp)))
    lines = [
        f"answer token {trace.answer}: clean p={trace.clean:.4f}, "
        f"corrupted p={trace.corrupted:.4f} (noise std {trace.noise_std:.3g})",
        f"{'layer':>5}  {'block':>8}  {'mlp':>8}  mlp effect",
    ]
    for i, (block_effect, mlp_effect) in enumerate(zip(layer, mlp, strict=True)):
        bar = "#" * max(0, round(width * mlp_effect / scale))
        lines.append(f"{i:>5}  {block_effect:>8.4f}  {mlp_effect:>8.4f}  {bar}")
    return "\n".join(lines)
