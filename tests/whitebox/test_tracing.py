from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers import GPT2LMHeadModel, LlamaForCausalLM

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.tracing import (
    CausalTrace,
    TraceParams,
    causal_trace,
    embedding_std,
    render_trace,
)
from tests.whitebox.tiny import parameters_snapshot, tiny_gpt2, tiny_llama

IDS = (1, 40, 41, 42, 50, 51, 52)
SUBJECT = (1, 3)  # tokens 40, 41, 42


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("build", [tiny_gpt2, tiny_llama])
def test_without_noise_every_restoration_gives_the_clean_probability(
    build: type[nn.Module],
) -> None:
    model = build()
    trace = causal_trace(model, IDS, SUBJECT, TraceParams(noise_scale=0.0, samples=3))
    assert trace.corrupted == pytest.approx(trace.clean, rel=1e-5)
    for restored in (*trace.layer, *trace.mlp):
        assert restored == pytest.approx(trace.clean, rel=1e-5)
    assert all(abs(e) < 1e-5 for e in trace.effects("layer") + trace.effects("mlp"))


def test_trace_has_one_entry_per_layer_and_noise_lowers_the_answer() -> None:
    model = tiny_gpt2(n_layer=4)
    trace = causal_trace(model, IDS, SUBJECT)
    assert len(trace.layer) == len(trace.mlp) == 4
    assert trace.corrupted < trace.clean
    with torch.no_grad():
        top = int(model(input_ids=torch.tensor([IDS])).logits[0, -1].argmax())
    assert trace.answer == top and trace.subject == SUBJECT
    assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in (*trace.layer, *trace.mlp))
    assert 0 <= trace.peak("mlp") < 4


@pytest.mark.parametrize("build", [tiny_gpt2, tiny_llama])
def test_restoring_the_last_block_at_the_last_token_recovers_everything(
    build: type[nn.Module],
) -> None:
    """When the prompt ends at the subject, the last block's output there fixes the logits."""
    model = build()
    ids = IDS[:4]  # ends with the subject's last token
    trace = causal_trace(model, ids, SUBJECT, TraceParams(samples=4))
    assert trace.corrupted < trace.clean
    assert trace.layer[-1] == pytest.approx(trace.clean, rel=1e-4)


def test_trace_leaves_the_model_unchanged_and_unhooked(llama: LlamaForCausalLM) -> None:
    llama.train()
    snapshot = parameters_snapshot(llama)
    causal_trace(llama, IDS, SUBJECT, TraceParams(samples=2, window=2))
    assert _no_hooks(llama) and llama.training
    assert all(torch.equal(p, snapshot[name]) for name, p in llama.named_parameters())


def test_trace_is_deterministic_for_a_seed(gpt2: GPT2LMHeadModel) -> None:
    first = causal_trace(gpt2, IDS, SUBJECT, TraceParams(samples=2, seed=3))
    again = causal_trace(gpt2, IDS, SUBJECT, TraceParams(samples=2, seed=3))
    other = causal_trace(gpt2, IDS, SUBJECT, TraceParams(samples=2, seed=4))
    assert first == again and other.corrupted != first.corrupted


def test_a_given_answer_is_traced(gpt2: GPT2LMHeadModel) -> None:
    trace = causal_trace(gpt2, IDS, SUBJECT, TraceParams(samples=2), answer=17)
    with torch.no_grad():
        probs = gpt2(input_ids=torch.tensor([IDS])).logits[0, -1].softmax(-1)
    assert trace.answer == 17 and trace.clean == pytest.approx(float(probs[17]), rel=1e-5)


def test_the_mlp_window_restores_neighbouring_layers_too(gpt2: GPT2LMHeadModel) -> None:
    single = causal_trace(gpt2, IDS, SUBJECT, TraceParams(samples=2))
    whole = causal_trace(gpt2, IDS, SUBJECT, TraceParams(samples=2, window=6))
    assert len(set(whole.mlp)) == 1  # every window covers all 3 layers
    assert whole.mlp != single.mlp and whole.layer == single.layer  # blocks: one at a time


def test_bad_subject_ranges_are_rejected(gpt2: GPT2LMHeadModel) -> None:
    with pytest.raises(WhiteboxError, match="subject range"):
        causal_trace(gpt2, IDS, (3, 1))
    with pytest.raises(WhiteboxError, match="subject range"):
        causal_trace(gpt2, IDS, (0, len(IDS)))
    with pytest.raises(WhiteboxError, match="samples"):
        TraceParams(samples=0)


def test_embedding_std_is_the_std_of_the_embedding_output(gpt2: GPT2LMHeadModel) -> None:
    wte = gpt2.transformer.wte
    assert embedding_std(wte) == pytest.approx(float(wte.weight.detach().std()), rel=1e-5)
    with pytest.raises(WhiteboxError, match=r"nn\.Embedding"):
        embedding_std(gpt2.lm_head)


def test_render_trace_prints_one_row_per_layer() -> None:
    trace = CausalTrace(
        answer=7,
        subject=(1, 2),
        noise_std=0.3,
        clean=0.5,
        corrupted=0.1,
        layer=(0.1, 0.3, 0.5),
        mlp=(0.1, 0.4, 0.2),
    )
    lines = render_trace(trace, width=10).splitlines()
    assert len(lines) == 2 + 3 and "clean p=0.5000" in lines[0]
    assert lines[3].endswith(" " + "#" * 8) and lines[2].endswith("0.0000  ")  # 0.3 / 0.4 of 10
    assert trace.peak("mlp") == 1 and trace.effects("layer") == pytest.approx((0.0, 0.2, 0.4))
