from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2LMHeadModel,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import (
    ARCHITECTURES,
    architecture_of,
    get_module,
    read_projection,
    write_projection,
)
from tests.whitebox.tiny import tiny_gpt2, tiny_llama

SMALL = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "vocab_size": 128,
}


def _tiny(model_type: str) -> nn.Module:
    torch.manual_seed(0)
    if model_type == "gpt2":
        return tiny_gpt2()
    if model_type == "llama":
        return tiny_llama()
    if model_type == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**SMALL))
    if model_type == "mistral":
        return MistralForCausalLM(MistralConfig(**SMALL))
    return Gemma3ForCausalLM(Gemma3TextConfig(**SMALL, head_dim=16))


@pytest.mark.parametrize("model_type", ["gpt2", "llama", "qwen2", "mistral", "gemma3_text"])
def test_table_resolves_every_module_of_a_tiny_model(model_type: str) -> None:
    model = _tiny(model_type)
    arch = architecture_of(model)
    assert arch.model_type == model_type and arch.num_layers(model) == 3
    for path in (arch.embedding, arch.final_norm, arch.lm_head, arch.layer_path(2)):
        get_module(model, path)
    weight = read_projection(get_module(model, arch.projection_path(2)))
    inner = 4 * 32 if model_type == "gpt2" else 64
    assert weight.shape == (32, inner)  # (out = hidden, in = MLP width)


def test_unknown_architecture_lists_the_supported_ones(gpt2: GPT2LMHeadModel) -> None:
    gpt2.config.model_type = "mamba"
    with pytest.raises(WhiteboxError, match="'mamba'") as info:
        architecture_of(gpt2)
    for name in ("gpt2", "llama", "qwen2", "mistral", "gemma3", "gemma3_text"):
        assert name in info.value.message


def test_missing_module_path_is_a_whitebox_error(gpt2: GPT2LMHeadModel) -> None:
    with pytest.raises(WhiteboxError, match=r"transformer\.h\.9"):
        get_module(gpt2, "transformer.h.9.mlp.c_proj")


def test_conv1d_is_read_and_written_as_out_by_in(gpt2: GPT2LMHeadModel) -> None:
    proj = gpt2.transformer.h[0].mlp.c_proj
    k = torch.randn(128)
    assert torch.allclose(proj(k[None])[0] - proj.bias, read_projection(proj) @ k, atol=1e-5)
    new = torch.randn(32, 128)
    write_projection(proj, new)
    assert torch.equal(read_projection(proj), new)
    assert torch.allclose(proj(k[None])[0] - proj.bias, new @ k, atol=1e-5)


def test_linear_is_read_and_written_as_out_by_in(llama: LlamaForCausalLM) -> None:
    proj = llama.model.layers[0].mlp.down_proj
    new = torch.randn(32, 64)
    write_projection(proj, new)
    k = torch.randn(64)
    assert torch.allclose(proj(k), new @ k, atol=1e-5)
    with pytest.raises(WhiteboxError, match="shape"):
        write_projection(proj, new.T)


def test_gemma3_default_layers_follow_the_causal_trace() -> None:
    for key in ("gemma3", "gemma3_text"):
        arch = ARCHITECTURES[key]
        assert arch.rome_layer(18) == 3
        assert arch.memit_layers(18) == (3,)  # its MLP output is normalised: one layer
        assert not arch.mlp_adds_to_residual


@pytest.mark.parametrize("model_type", sorted(ARCHITECTURES))
def test_default_layers_lie_inside_the_model(model_type: str) -> None:
    arch = ARCHITECTURES[model_type]
    for depth in (2, 12, 18, 48):
        layers = arch.memit_layers(depth)
        assert 0 <= arch.rome_layer(depth) < depth
        assert layers and 0 <= layers[0] <= layers[-1] < depth
