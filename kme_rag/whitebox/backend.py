"""A :class:`~kme_rag.backends.Backend` over a local PyTorch model: answers from its weights.

This is what route ``weights`` calls: the same greedy decoding as the llama.cpp backend,
on the (possibly edited) Hugging Face model the white-box code writes into. A model
without a chat template (a base model such as Gemma 3 270M) gets the project's Q/A framing
(:func:`kme_rag.backends.qa_chat`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList

from kme_rag.backends import DEFAULT_MAX_TOKENS, Message, cut_at_stop, qa_chat
from kme_rag.errors import ContextOverflowError, ValidationError
from kme_rag.whitebox.prompts import eval_mode, model_device

__all__ = ["TorchBackend"]


class _StopOnText(StoppingCriteria):
    """Stop once the decoded continuation contains a stop string.

    (transformers' own ``stop_strings`` pre-processes the whole vocabulary on every call:
    seconds for Gemma's 262k tokens.)
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, start: int, stop: Sequence[str]):
        self.tokenizer, self.start, self.stop = tokenizer, start, [s for s in stop if s]

    def __call__(
        self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object
    ) -> torch.Tensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if not self.stop:
            return done
        for row in range(input_ids.shape[0]):
            text = self.tokenizer.decode(input_ids[row, self.start :], skip_special_tokens=True)
            done[row] = any(s in text for s in self.stop)
        return done


class TorchBackend:
    """Greedy generation from a Hugging Face causal LM; calls are serialised (one model)."""

    def __init__(
        self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, *, name: str = "torch"
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self._lock = threading.Lock()
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        self._max_positions = int(limit) if limit else None

    @property
    def chat_native(self) -> bool:
        return getattr(self.tokenizer, "chat_template", None) is not None

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def _check_length(self, prompt_tokens: int, max_tokens: int) -> None:
        if max_tokens < 1:
            raise ValidationError(f"expected max_tokens >= 1, got {max_tokens}")
        if self._max_positions and prompt_tokens + max_tokens > self._max_positions:
            raise ContextOverflowError(
                f"{prompt_tokens} prompt tokens + {max_tokens} exceed the model's "
                f"{self._max_positions} positions"
            )

    @torch.no_grad()
    def _generate(
        self, prompts: Sequence[Sequence[int]], max_tokens: int, stop: Sequence[str]
    ) -> list[str]:
        """Greedy continuations of a batch of prompts, left-padded (one pass reads the
        weights once for every row: on a CPU, decoding is bound by memory, so a batch of
        three costs little more than one)."""
        width = max(len(p) for p in prompts)
        self._check_length(width, max_tokens)
        ids = torch.zeros(len(prompts), width, dtype=torch.long)  # (b, t), left-padded
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(list(prompt))
            mask[row, width - len(prompt) :] = 1
        device = model_device(self.model)
        with self._lock, eval_mode(self.model):
            out = self.model.generate(  # type: ignore[operator]
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_tokens,
                do_sample=False,
                stopping_criteria=StoppingCriteriaList([_StopOnText(self.tokenizer, width, stop)]),
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        texts = self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
        return [cut_at_stop(str(text), stop) for text in texts]

    def complete_many(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        stop: Sequence[str] = (),
    ) -> list[str]:
        """:meth:`complete` for several prompts in one batch."""
        return self._generate([self.tokenizer(p)["input_ids"] for p in prompts], max_tokens, stop)

    def complete(
        self, prompt: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, stop: Sequence[str] = ()
    ) -> str:
        return self.complete_many([prompt], max_tokens=max_tokens, stop=stop)[0]

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        stop: Sequence[str] = (),
    ) -> str:
        if not self.chat_native:
            return qa_chat(self, messages, max_tokens, stop)
        turns = [{"role": m["role"], "content": m["content"]} for m in messages]
        ids: Any = self.tokenizer.apply_chat_template(turns, add_generation_prompt=True)
        return self._generate([[int(i) for i in ids]], max_tokens, stop)[0].strip()
