"""What a model looks like: module paths per architecture, keyed by ``config.model_type``.

Weight editing needs five places in a causal LM: the list of decoder layers, the MLP
output projection of a layer (its *input* is the key k, its *output* the value W k),
the token embedding, the final norm and the LM head. They differ only in names, so they
live in one table (:data:`ARCHITECTURES`) rather than in code that guesses from a model's
name. An unknown ``model_type`` raises :class:`WhiteboxError` listing the supported ones.

Weights are read and written in one canonical orientation, ``(out, in)``, so that the
value of key ``k`` is ``W @ k`` — nn.Linear stores that already; GPT-2's ``Conv1D`` stores
``(in, out)`` and is transposed on the way in and out (:func:`read_projection`,
:func:`write_projection`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from kme_rag.errors import WhiteboxError

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "architecture_of",
    "get_module",
    "read_projection",
    "write_projection",
]


@dataclass(frozen=True)
class Architecture:
    """Module path templates of one architecture; ``{}`` stands for the layer index.

    Default edit layers are fractions of depth, so one entry serves every size of a family:
    ``layer = round(fraction * (num_layers - 1))``.
    """

    model_type: str
    body: str  # the decoder stack without the LM head; its output is the final hidden state
    layer: str  # one decoder block, e.g. "transformer.h.{}"
    projection: str  # MLP output projection: input = key k, output = value W k
    embedding: str
    final_norm: str
    lm_head: str
    num_layers_attr: str  # dotted attribute of model.config
    rome_depth: float
    memit_depths: tuple[float, float]  # first and last layer of the MEMIT range
    # False when a norm sits between the MLP and the residual stream (Gemma 2/3's
    # post-feedforward RMSNorm): an MLP change then does not add to the residual as MEMIT's
    # spreading over layers assumes, so MEMIT edits one layer, in the projection's space.
    mlp_adds_to_residual: bool = True
    # ROME's bound on the optimised δ, as a multiple of ‖h‖ (the unedited value at the
    # subject): ROME's 4 on GPT-2 XL; smaller where a larger δ bleeds into other subjects
    target_clamp: float = 4.0

    def layer_path(self, layer: int) -> str:
        return self.layer.format(layer)

    def projection_path(self, layer: int) -> str:
        return self.projection.format(layer)

    def num_layers(self, model: nn.Module) -> int:
        value: Any = model.config
        for name in self.num_layers_attr.split("."):
            value = getattr(value, name)
        return int(value)

    def rome_layer(self, num_layers: int) -> int:
        """The default ROME layer for a model of this depth."""
        return _depth_to_layer(self.rome_depth, num_layers)

    def memit_layers(self, num_layers: int) -> tuple[int, ...]:
        """The default MEMIT layer range (inclusive) for a model of this depth."""
        first, last = (_depth_to_layer(d, num_layers) for d in self.memit_depths)
        return tuple(range(first, last + 1))


def _depth_to_layer(fraction: float, num_layers: int) -> int:
    return min(num_layers - 1, max(0, round(fraction * (num_layers - 1))))


def _hf_decoder(model_type: str, prefix: str, num_layers_attr: str, **depths: Any) -> Architecture:
    """A Llama-style decoder: ``{prefix}.layers.{i}.mlp.down_proj`` and friends."""
    return Architecture(
        model_type=model_type,
        body=prefix,
        layer=f"{prefix}.layers.{{}}",
        projection=f"{prefix}.layers.{{}}.mlp.down_proj",
        embedding=f"{prefix}.embed_tokens",
        final_norm=f"{prefix}.norm",
        lm_head="lm_head",
        num_layers_attr=num_layers_attr,
        **depths,
    )


# Default layers. GPT-2: ROME's layer 17 and MEMIT's 13-17 of GPT-2 XL's 48 layers.
# Llama, Qwen2, Mistral: EasyEdit's layer 5 and 4-8 of their 32-layer 7B models.
_LLAMA_DEPTHS: dict[str, Any] = {"rome_depth": 5 / 31, "memit_depths": (4 / 31, 8 / 31)}
# Gemma 3: from causal tracing on Gemma 3 270M (18 layers; whitebox/tracing.py, 10 noise
# samples): the MLP indirect effect at the subject's last token peaks at layer 3 on four
# factual prompts (window 3: layers 2-4); an edit at layer 5 made generation degenerate.
# ROME layer 3. MEMIT layer 3 alone: Gemma normalises each MLP's output before adding it
# to the residual stream, so MEMIT's residual target cannot be spread over layers 2-4
# (tried: one edit spread over 2-4 made "The Eiffel Tower is located in the city of" →
# "the city of the city of …").
# δ clamp 1.0 ‖h‖ (benchmarks/experiments/rome_ablation.py, efficacy / paraphrase /
# neighbourhood). First chosen on the first 40 cases of CounterFact's *evaluation* split
# (a mistake): ROME's 4.0: 100 / 95 / 55%; 2.0: 100 / 97.5 / 70%; 1.0: 100 / 97.5 / 77.5%
# (8.9 s per edit); 0.5: 97.5 / 90 / 82.5% (12.4 s: it rarely reaches the early stop).
# Layer 2 at 4.0: 100 / 97.5 / 65% (19.6 s). Again on the first 40 cases of the *training*
# split (results/2026-12-03-b/rome-ablation-train-40.json): 4.0: 100 / 100 / 45%; 2.0:
# 100 / 97.5 / 60%; 1.0: 100 / 92.5 / 72.5% (9.8 s); 0.5: 100 / 92.5 / 75% (14.6 s). The
# rule written before that run (highest mean of the three) picks 0.5, by one neighbourhood
# case of 40 at 1.5x the edit time; 1.0 stays until every weight figure that depends on it
# is rerun at 0.5 (not done yet). A δ much longer than ‖h‖ takes over the MLP's normalised
# output, at other subjects' keys too.
_GEMMA3_DEPTHS: dict[str, Any] = {
    "rome_depth": 3 / 17,
    "memit_depths": (3 / 17, 3 / 17),
    "mlp_adds_to_residual": False,
    "target_clamp": 1.0,
}

ARCHITECTURES: dict[str, Architecture] = {
    "gpt2": Architecture(
        model_type="gpt2",
        body="transformer",
        layer="transformer.h.{}",
        projection="transformer.h.{}.mlp.c_proj",
        embedding="transformer.wte",
        final_norm="transformer.ln_f",
        lm_head="lm_head",
        num_layers_attr="n_layer",
        rome_depth=17 / 47,
        memit_depths=(13 / 47, 17 / 47),
    ),
    "llama": _hf_decoder("llama", "model", "num_hidden_layers", **_LLAMA_DEPTHS),
    "qwen2": _hf_decoder("qwen2", "model", "num_hidden_layers", **_LLAMA_DEPTHS),
    "mistral": _hf_decoder("mistral", "model", "num_hidden_layers", **_LLAMA_DEPTHS),
    # Text-only Gemma 3 (Gemma3ForCausalLM; what a GGUF of Gemma 3 270M loads as).
    "gemma3_text": _hf_decoder("gemma3_text", "model", "num_hidden_layers", **_GEMMA3_DEPTHS),
    # Multimodal Gemma 3 (Gemma3ForConditionalGeneration): the text stack sits one level down.
    "gemma3": _hf_decoder(
        "gemma3", "model.language_model", "text_config.num_hidden_layers", **_GEMMA3_DEPTHS
    ),
}


def architecture_of(model: nn.Module) -> Architecture:
    """The table entry for ``model.config.model_type``; raises listing the supported types."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in ARCHITECTURES:
        supported = ", ".join(sorted(ARCHITECTURES))
        raise WhiteboxError(
            f"unsupported architecture {model_type!r}; supported model types: {supported}"
        )
    return ARCHITECTURES[model_type]


def get_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at a dotted path such as ``transformer.h.3.mlp.c_proj``."""
    try:
        return model.get_submodule(path)
    except AttributeError as exc:
        raise WhiteboxError(f"model {type(model).__name__} has no module {path!r}") from exc


def _weight(module: nn.Module) -> torch.Tensor:
    if not isinstance(module, nn.Linear | Conv1D):
        raise WhiteboxError(
            f"expected an nn.Linear or Conv1D projection, got {type(module).__name__}"
        )
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    return weight


def read_projection(module: nn.Module) -> torch.Tensor:
    """The projection's weight as ``(out, in)`` — a view, not a copy; value = ``W @ k``."""
    weight = _weight(module)
    return weight.T if isinstance(module, Conv1D) else weight  # Conv1D stores (in, out)


def write_projection(module: nn.Module, weight: torch.Tensor) -> None:
    """Overwrite the projection's weight in place from an ``(out, in)`` tensor.

    The values are cast to the stored dtype; device and dtype of the parameter do not change.
    """
    target = read_projection(module)
    if weight.shape != target.shape:
        raise WhiteboxError(f"expected a weight of shape {tuple(target.shape)}, got {weight.shape}")
    with torch.no_grad():
        target.copy_(weight)
