"""Write an edited model back as GGUF, so llama.cpp serves the edited weights.

The output is the source GGUF with only the edited tensors replaced: every metadata key
and every other tensor is copied byte for byte (the Q4_K blocks stay Q4_K), and each
edited projection is written from the torch weights as F32, F16 or re-quantised Q8_0.
A ROME edit touches one ``blk.N.ffn_down.weight``; MEMIT a few.

Torch module paths map to GGUF tensor names through ``gguf``'s own name table for the
file's architecture (``model.layers.3.mlp.down_proj`` → ``blk.3.ffn_down``). A torch
``(out, in)`` weight is a GGUF tensor of dims ``[in, out]``, which numpy reads as
``(out, in)``: no transpose.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import gguf
import numpy as np
from torch import nn

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import get_module, read_projection

__all__ = ["TensorType", "export_gguf", "gguf_tensor_name"]

log = logging.getLogger(__name__)

TensorType = Literal["f32", "f16", "q8_0"]
_QTYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
}


def _architecture(reader: gguf.GGUFReader) -> gguf.MODEL_ARCH:
    field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    if field is None:
        raise WhiteboxError("the source GGUF names no general.architecture")
    name = str(field.contents())
    for arch, arch_name in gguf.MODEL_ARCH_NAMES.items():
        if arch_name == name:
            return arch
    raise WhiteboxError(f"gguf does not know the architecture {name!r}")


def _block_count(reader: gguf.GGUFReader, arch_name: str) -> int:
    field = reader.get_field(f"{arch_name}.block_count")
    if field is None:
        raise WhiteboxError(f"the source GGUF has no {arch_name}.block_count")
    return int(field.contents())


def gguf_tensor_name(reader: gguf.GGUFReader, module_path: str) -> str:
    """The GGUF name of a torch module's weight: ``blk.3.ffn_down.weight``."""
    arch = _architecture(reader)
    names = gguf.get_tensor_name_map(arch, _block_count(reader, gguf.MODEL_ARCH_NAMES[arch]))
    name = names.get_name(f"{module_path}.weight", try_suffixes=(".weight",))
    if name is None:
        raise WhiteboxError(f"no GGUF tensor for {module_path!r} in this architecture")
    return name


def _encode(weight: np.ndarray, tensor_type: TensorType) -> np.ndarray:
    """The ``(out, in)`` float32 weight as the bytes (or floats) GGUF stores."""
    if tensor_type == "f32":
        return weight.astype(np.float32)
    if tensor_type == "f16":
        return weight.astype(np.float16)
    return gguf.quants.quantize(weight.astype(np.float32), _QTYPES["q8_0"])


def _copy_metadata(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    for field in reader.fields.values():
        # the writer writes the GGUF.* header fields and the architecture itself
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)


def export_gguf(
    source: Path,
    model: nn.Module,
    module_paths: Sequence[str],
    out: Path,
    *,
    tensor_type: TensorType = "f32",
) -> list[str]:
    """Write ``out``: ``source`` with the weights of ``module_paths`` taken from ``model``.

    Returns the GGUF names of the replaced tensors. The file is written next to ``out``
    and renamed into place, so a failed export leaves no half-written model.
    """
    if tensor_type not in _QTYPES:
        raise WhiteboxError(f"expected tensor type f32, f16 or q8_0, got {tensor_type!r}")
    reader = gguf.GGUFReader(source)
    replaced: dict[str, np.ndarray] = {}
    for path in module_paths:
        weight = read_projection(get_module(model, path)).detach().float().cpu().numpy()
        replaced[gguf_tensor_name(reader, path)] = _encode(weight, tensor_type)  # (out, in)
    known = {t.name for t in reader.tensors}
    if missing := sorted(set(replaced) - known):
        raise WhiteboxError(f"the source GGUF has no tensors {missing}")

    arch_name = gguf.MODEL_ARCH_NAMES[_architecture(reader)]
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(tmp, arch=arch_name, endianess=reader.endianess)
    alignment = reader.get_field(gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = int(alignment.contents())
    try:
        _copy_metadata(reader, writer)
        for tensor in reader.tensors:
            data = replaced.get(tensor.name, tensor.data)
            qtype = _QTYPES[tensor_type] if tensor.name in replaced else tensor.tensor_type
            writer.add_tensor_info(tensor.name, data.shape, data.dtype, data.nbytes, qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor in reader.tensors:
            writer.write_tensor_data(replaced.get(tensor.name, tensor.data))
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    log.info("exported %s with %d replaced tensors", out, len(replaced))
    return sorted(replaced)
