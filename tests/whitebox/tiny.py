"""Builders for tiny models and tokenised edit requests used across the white-box tests."""

from __future__ import annotations

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from kme_rag.whitebox.prompts import EditRequest, TokenizedPrompt

VOCAB = 128
# Wider than GPT-2's 0.02, so that logits of a random model respond to one layer's change.
INIT = 0.3


def tiny_gpt2(seed: int = 0, n_layer: int = 3) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=n_layer,
        n_embd=32,
        n_head=2,
        vocab_size=VOCAB,
        n_positions=64,
        initializer_range=INIT,
        bos_token_id=1,
        eos_token_id=2,
    )
    return GPT2LMHeadModel(config).eval()


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=VOCAB,
        max_position_embeddings=64,
        initializer_range=INIT,
    )
    return LlamaForCausalLM(config).eval()


def edit_request(
    subject: tuple[int, ...],
    target: tuple[int, ...],
    relation: tuple[int, ...] = (),
    n_prefixes: int = 4,
    seed: int = 0,
) -> EditRequest:
    """``prefix + subject + relation`` prompts → ``target``; essence ``subject + (50, 51)``.

    Prefixes have 0..n_prefixes-1 random tokens. With no relation tokens the prompt ends at
    the subject, so one layer's change reaches the prediction directly (random attention
    carries little from the subject to later positions).
    """
    gen = torch.Generator().manual_seed(seed)
    prompts = []
    for n in range(n_prefixes):
        prefix = tuple(torch.randint(60, VOCAB, (n,), generator=gen).tolist())
        ids = prefix + subject + relation
        prompts.append(TokenizedPrompt(ids, len(prefix) + len(subject) - 1))
    essence = (TokenizedPrompt((*subject, 50, 51), len(subject) - 1),)
    return EditRequest(tuple(prompts), target, essence)


@torch.no_grad()
def target_logprob(model: nn.Module, prompt: TokenizedPrompt, target: tuple[int, ...]) -> float:
    """Sum of log p(target tokens | prompt) under the model."""
    ids = torch.tensor([[*prompt.input_ids, *target[:-1]]])
    logp = model(input_ids=ids).logits[0].float().log_softmax(-1)  # (t, V)
    start = len(prompt.input_ids) - 1
    return sum(float(logp[start + j, tok]) for j, tok in enumerate(target))


def parameters_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def all_equal(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(p, snapshot[name]) for name, p in model.named_parameters())
