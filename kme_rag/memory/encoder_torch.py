"""The sentence encoder as a torch module: the embedder's ``torch`` runtime and the
reference the torch-free ONNX graph (:mod:`kme_rag.memory.bert_onnx`) is tested against.

Imported lazily: only that runtime needs torch and transformers. The module takes token
ids and returns what sentence-transformers returns for all-MiniLM-L6-v2: mean-pooled,
L2-normalised token states.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModel
from transformers.utils import logging as hf_logging

__all__ = ["PooledEncoder"]


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
