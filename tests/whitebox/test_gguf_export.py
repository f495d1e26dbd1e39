"""GGUF export on a small GGUF written in the test: only the edited tensors change."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from kme_rag.errors import WhiteboxError
from kme_rag.whitebox.architectures import get_module, read_projection
from kme_rag.whitebox.gguf_export import export_gguf, gguf_tensor_name
from tests.whitebox.tiny import tiny_llama

DOWN = "model.layers.{}.mlp.down_proj"


def _source(path: Path, model: torch.nn.Module) -> Path:
    """A llama GGUF holding the tiny model's three down projections (one as Q8_0)."""
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_block_count(3)
    writer.add_string("kme.test.note", "kept as it is")
    for layer in range(3):
        weight = read_projection(get_module(model, DOWN.format(layer))).detach().numpy()
        if layer == 2:
            data = gguf.quants.quantize(weight, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(
                f"blk.{layer}.ffn_down.weight", data, raw_dtype=gguf.GGMLQuantizationType.Q8_0
            )
        else:
            writer.add_tensor(f"blk.{layer}.ffn_down.weight", weight.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _tensors(path: Path) -> dict[str, gguf.ReaderTensor]:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


@pytest.mark.parametrize("tensor_type", ["f32", "f16", "q8_0"])
def test_export_replaces_only_the_edited_tensor(tmp_path: Path, tensor_type: str) -> None:
    model = tiny_llama()
    source = _source(tmp_path / "source.gguf", model)
    proj = get_module(model, DOWN.format(2))
    with torch.no_grad():
        read_projection(proj).add_(0.5)  # the "edit"
    out = tmp_path / "edited.gguf"

    written = export_gguf(source, model, [DOWN.format(2)], out, tensor_type=tensor_type)  # type: ignore[arg-type]

    assert written == ["blk.2.ffn_down.weight"]
    before, after = _tensors(source), _tensors(out)
    assert set(before) == set(after)
    for name in ("blk.0.ffn_down.weight", "blk.1.ffn_down.weight"):
        assert after[name].tensor_type == before[name].tensor_type
        assert np.array_equal(after[name].data, before[name].data)  # byte for byte
    edited = after["blk.2.ffn_down.weight"]
    assert edited.tensor_type.name == tensor_type.upper()
    values = gguf.quants.dequantize(edited.data, edited.tensor_type)  # (out, in)
    expected = read_projection(proj).detach().numpy()
    atol = {"f32": 0.0, "f16": 1e-3, "q8_0": 2e-2}[tensor_type]
    assert values.shape == expected.shape and np.allclose(values, expected, atol=atol)
    note = gguf.GGUFReader(out).get_field("kme.test.note")
    assert note is not None and note.contents() == "kept as it is"
    assert not (tmp_path / "edited.gguf.tmp").exists()


def test_names_map_through_gguf_s_table(tmp_path: Path) -> None:
    reader = gguf.GGUFReader(_source(tmp_path / "s.gguf", tiny_llama()))
    assert gguf_tensor_name(reader, DOWN.format(1)) == "blk.1.ffn_down.weight"
    with pytest.raises(WhiteboxError, match="no GGUF tensor"):
        gguf_tensor_name(reader, "model.layers.1.mlp.nonsense")


def test_a_module_the_source_lacks_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    model = tiny_llama()
    source = _source(tmp_path / "s.gguf", model)
    out = tmp_path / "edited.gguf"
    with pytest.raises(WhiteboxError, match="no tensors"):
        export_gguf(source, model, ["model.layers.0.mlp.up_proj"], out)
    assert not out.exists()
