"""Tokenised edit requests and the plumbing to run them through a model in batches.

The white-box core never sees text: an adapter tokenises the edit's prompts (with ROME's
context prefixes), finds the subject's last token, and hands over an :class:`EditRequest`.
Batches are right-padded, so every real token keeps its position and, under the causal
mask, never sees the padding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.hooks import capture

__all__ = [
    "EditRequest",
    "TokenizedPrompt",
    "eval_mode",
    "model_device",
    "pad_batch",
    "values_at_subject",
]


@dataclass(frozen=True)
class TokenizedPrompt:
    """Token ids of a prompt that ends right before the object, and the subject's last index."""

    input_ids: tuple[int, ...]
    subject_last: int

    def __post_init__(self) -> None:
        if not 0 <= self.subject_last < len(self.input_ids):
            raise WhiteboxError(
                f"expected subject_last in [0, {len(self.input_ids)}), got {self.subject_last}"
            )


@dataclass(frozen=True)
class EditRequest:
    """One fact to write: ``prompts`` (context-prefixed) → ``target_ids``.

    ``essence`` holds prompts such as "{subject} is a", whose next-token distribution at the
    subject's last token the edit should leave alone (ROME's KL term); it may be empty.
    """

    prompts: tuple[TokenizedPrompt, ...]
    target_ids: tuple[int, ...]
    essence: tuple[TokenizedPrompt, ...] = ()

    def __post_init__(self) -> None:
        if not self.prompts:
            raise WhiteboxError("expected at least one prompt, got none")
        if not self.target_ids:
            raise WhiteboxError("expected a non-empty target, got no token ids")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (where inputs must go)."""
    return next(model.parameters()).device


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run the block with the model in eval mode (no dropout); restore its mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def pad_batch(
    sequences: Sequence[Sequence[int]], device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id sequences with 0: ``input_ids`` and ``attention_mask``, (b, t).

    Built on the host; moved to ``device`` when one is given.
    """
    width = max(len(seq) for seq in sequences)
    input_ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, : len(seq)] = 1
    if device is None:
        return input_ids, mask
    return input_ids.to(device), mask.to(device)


@torch.no_grad()
def values_at_subject(
    model: nn.Module,
    module: nn.Module,
    prompts: Sequence[TokenizedPrompt],
    *,
    want: Literal["input", "output"],
    batch_size: int = 32,
) -> torch.Tensor:
    """The module's ``want`` ("input" or "output") at each prompt's subject-last token.

    Returns float32 ``(len(prompts), d)``. The forward stops after the module; the model is
    unchanged on return.
    """
    if want not in ("input", "output"):
        raise WhiteboxError(f"expected want='input' or 'output', got {want!r}")
    device = model_device(model)
    rows: list[torch.Tensor] = []
    with eval_mode(model):
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            ids, mask = pad_batch([p.input_ids for p in chunk], device)
            with capture(module, input=want == "input", output=want == "output", stop=True) as seen:
                model(input_ids=ids, attention_mask=mask)
            acts = seen.input if want == "input" else seen.output  # (b, t, d)
            assert acts is not None
            index = torch.tensor([p.subject_last for p in chunk], device=device)
            rows.append(acts[torch.arange(len(chunk), device=device), index].float())  # (b, d)
    return torch.cat(rows)
