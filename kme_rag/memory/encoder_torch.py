"""The sentence encoder as a torch module, and its one-time export to ONNX.

Imported lazily: only the first export (or the ``torch`` runtime) needs torch and
transformers. The module takes token ids and returns what sentence-transformers
returns for all-MiniLM-L6-v2: mean-pooled, L2-normalised token states.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from transformers import AutoModel
from transformers.utils import logging as hf_logging

__all__ = ["PooledEncoder", "export_onnx"]


class PooledEncoder(torch.nn.Module):
    """(input_ids, attention_mask, token_type_ids) → unit sentence vectors (B, dim)."""

    def __init__(self, model_dir: Path) -> None:
        super().__init__()
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call] # no "Loading weights" bar on a user's terminal
        self.encoder = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # (B, T, dim)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, dim)
        return torch.nn.functional.normalize(pooled, dim=-1)


def export_onnx(model_dir: Path, out: Path, opset: int) -> None:
    """Write the pooled encoder as an ONNX graph (operator set ``opset``) with dynamic
    batch and length."""
    module = PooledEncoder(model_dir)
    example = torch.ones(2, 8, dtype=torch.long)  # (B, T)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dynamic = {name: {0: "batch", 1: "tokens"} for name in names}
    tmp = out.with_suffix(".partial")
    # The tracer warns about shape-dependent branches in transformers' mask code; the
    # export is checked against the torch module on padded batches in the tests.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example, example, torch.zeros_like(example)),
            str(tmp),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes={**dynamic, "embedding": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    tmp.replace(out)  # atomic: a half-written export is never picked up
