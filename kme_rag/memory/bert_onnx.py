"""A BERT-style sentence encoder written straight into an ONNX graph, without torch.

The embedder's default runtime is onnxruntime; its graph used to come from
``torch.onnx.export`` of the transformers module, so the first query of a fresh install
needed torch. This module builds the same computation from the safetensors weights and
the model's ``config.json`` with numpy and ``onnx.helper`` alone: embeddings (word +
position + token type, LayerNorm), ``num_hidden_layers`` post-norm encoder layers
(multi-head self-attention with an additive padding mask, GELU feed-forward), then the
sentence-transformers head (mean over unmasked tokens, L2 normalisation). Inputs and
output are those of the torch export: ``input_ids``, ``attention_mask``,
``token_type_ids`` (int64, (batch, tokens)) → ``embedding`` (float32, (batch, hidden)).

The integration tests check it against the transformers module on padded batches.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from kme_rag.errors import ConfigurationError

__all__ = ["GRAPH_VERSION", "build_bert_onnx", "read_safetensors"]

GRAPH_VERSION = "kme-bert-1"  # bump when the graph below changes: it keys the cache

_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}
_MASK_MIN = float(np.finfo(np.float32).min)  # what transformers adds at padded positions


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file as a numpy array (8-byte header length,
    a JSON header of dtypes, shapes and byte offsets, then the raw little-endian data)."""
    blob = path.read_bytes()
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + size])
    start = 8 + size
    tensors: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if spec["dtype"] not in _DTYPES:
            raise ConfigurationError(f"{path.name}: tensor {name!r} has dtype {spec['dtype']}")
        lo, hi = spec["data_offsets"]
        flat = np.frombuffer(blob[start + lo : start + hi], dtype=_DTYPES[spec["dtype"]])
        tensors[name] = flat.reshape(spec["shape"])
    return tensors


class _Graph:
    """Nodes and initialisers being collected, with fresh names for intermediates."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        from onnx import helper

        self.helper = helper
        self.weights = weights
        self.nodes: list[object] = []
        self.inits: list[object] = []
        self._count = 0
        self._names: set[str] = set()

    def const(self, name: str, value: np.ndarray) -> str:
        """An initialiser; a name already given is the same constant, added once."""
        from onnx import numpy_helper

        if name not in self._names:
            self._names.add(name)
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def weight(self, key: str, *, transpose: bool = False) -> str:
        """A tensor of the checkpoint as a float32 initialiser (a linear layer's weight
        transposed, so ``MatMul(x, W)`` computes ``x @ W.T`` as torch's Linear does)."""
        value = self.weights[key].astype(np.float32)
        return self.const(key, value.T if transpose else value)

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        self._count += 1
        out = f"{kind.lower()}_{self._count}"
        self.nodes.append(self.helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def linear(self, x: str, prefix: str) -> str:
        product = self.op("MatMul", x, self.weight(f"{prefix}.weight", transpose=True))
        return self.op("Add", product, self.weight(f"{prefix}.bias"))

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        scale, bias = self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")
        return self.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=eps)


def _attention(g: _Graph, x: str, mask: str, prefix: str, heads: int, head_dim: int) -> str:
    """Multi-head self-attention of ``x`` (B, T, H) → (B, T, H), before the output dense."""
    split = g.const("attention.split", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge = g.const("attention.merge", np.array([0, 0, heads * head_dim], dtype=np.int64))

    def heads_of(name: str, perm: list[int]) -> str:
        shaped = g.op("Reshape", g.linear(x, f"{prefix}.{name}"), split)  # (B, T, h, d)
        return g.op("Transpose", shaped, perm=perm)

    query = heads_of("query", [0, 2, 1, 3])  # (B, h, T, d)
    key = heads_of("key", [0, 2, 3, 1])  # (B, h, d, T)
    value = heads_of("value", [0, 2, 1, 3])  # (B, h, T, d)
    scale = g.const("attention.scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))
    scores = g.op("Add", g.op("Mul", g.op("MatMul", query, key), scale), mask)  # (B, h, T, T)
    context = g.op("MatMul", g.op("Softmax", scores, axis=-1), value)  # (B, h, T, d)
    return g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge)


def _gelu(g: _Graph, x: str) -> str:
    """The exact (erf) GELU: 0.5 · x · (1 + erf(x / √2))."""
    root2 = g.const("gelu.root2", np.array(np.sqrt(2.0), dtype=np.float32))
    one = g.const("gelu.one", np.array(1.0, dtype=np.float32))
    half = g.const("gelu.half", np.array(0.5, dtype=np.float32))
    erf = g.op("Erf", g.op("Div", x, root2))
    return g.op("Mul", g.op("Mul", x, half), g.op("Add", erf, one))


def build_bert_onnx(model_dir: Path, out: Path, opset: int = 17) -> None:
    """Write the pooled, normalised encoder of ``model_dir`` (a BERT checkpoint:
    ``config.json`` + ``model.safetensors``) as an ONNX graph with dynamic batch and length."""
    import onnx
    from onnx import TensorProto, helper

    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ConfigurationError(
            f"{model_dir}: only BERT encoders with GELU are built without torch; "
            "set KME_EMBEDDER_RUNTIME=torch for this model"
        )
    weights_file = model_dir / "model.safetensors"
    if not weights_file.is_file():
        raise ConfigurationError(f"{model_dir}: no model.safetensors to build the encoder from")
    weights = read_safetensors(weights_file)
    if "embeddings.word_embeddings.weight" not in weights:  # saved with a "bert." prefix
        weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    g = _Graph(weights)

    # Embeddings: word + absolute position (0 … T-1) + token type, then LayerNorm.
    first = g.const("axis.0", np.array([0], dtype=np.int64))
    length = g.op("Shape", "input_ids", start=1, end=2)  # [T]
    table = g.weight("embeddings.position_embeddings.weight")
    where = g.op("Slice", table, first, length, first)  # rows 0 … T-1: (T, H)
    words = g.op("Gather", g.weight("embeddings.word_embeddings.weight"), "input_ids")
    types = g.op("Gather", g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids")
    summed = g.op("Add", g.op("Add", words, where), types)  # (B, T, H)
    x = g.layer_norm(summed, "embeddings.LayerNorm", eps)

    # Padding as an additive mask (B, 1, 1, T): 0 where attended, float32 min where padded.
    present = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)  # (B, T)
    ones = g.const("mask.one", np.array(1.0, dtype=np.float32))
    lowest = g.const("mask.min", np.array(_MASK_MIN, dtype=np.float32))
    axes = g.const("mask.axes", np.array([1, 2], dtype=np.int64))
    additive = g.op("Mul", g.op("Sub", ones, present), lowest)
    mask = g.op("Unsqueeze", additive, axes)

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        context = _attention(g, x, mask, f"{p}.attention.self", heads, hidden // heads)
        attended = g.linear(context, f"{p}.attention.output.dense")
        x = g.layer_norm(g.op("Add", attended, x), f"{p}.attention.output.LayerNorm", eps)
        inner = _gelu(g, g.linear(x, f"{p}.intermediate.dense"))
        ffn = g.linear(inner, f"{p}.output.dense")
        x = g.layer_norm(g.op("Add", ffn, x), f"{p}.output.LayerNorm", eps)

    # Mean over unmasked tokens, then L2 normalisation (torch's normalize: eps 1e-12).
    last = g.const("pool.axis", np.array([-1], dtype=np.int64))
    tokens = g.const("pool.tokens", np.array([1], dtype=np.int64))
    weights_3d = g.op("Unsqueeze", present, last)  # (B, T, 1)
    total = g.op("ReduceSum", g.op("Mul", x, weights_3d), tokens, keepdims=0)  # (B, H)
    count = g.op("ReduceSum", weights_3d, tokens, keepdims=0)  # (B, 1)
    tiny = g.const("pool.tiny", np.array(1e-9, dtype=np.float32))
    pooled = g.op("Div", total, g.op("Max", count, tiny))
    norm = g.op("ReduceL2", pooled, axes=[-1], keepdims=1)  # axes an attribute before opset 18
    floor = g.const("norm.eps", np.array(1e-12, dtype=np.float32))
    g.nodes.append(helper.make_node("Div", [pooled, g.op("Max", norm, floor)], ["embedding"]))

    ints = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])
    graph = helper.make_graph(g.nodes, "pooled_encoder", ints, [output], initializer=g.inits)  # type: ignore[arg-type]
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)  # readable by older onnxruntime releases
    onnx.checker.check_model(model)
    tmp = out.with_suffix(".partial")
    onnx.save(model, str(tmp))
    tmp.replace(out)  # atomic: a half-written graph is never picked up
