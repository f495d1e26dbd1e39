from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from kme_rag.errors import ConfigurationError
from kme_rag.whitebox import loading
from kme_rag.whitebox.loading import (
    ConversionKey,
    LoadParams,
    cached_conversion,
    default_device,
    load_model,
)
from tests.whitebox.tiny import tiny_llama
from tests.whitebox.words import word_tokenizer

KEY = ConversionKey("ab" * 32, "5.0.0", "float32")


class _Converter:
    """A stand-in for the GGUF conversion: writes one file and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, out: Path) -> None:
        assert not any(out.iterdir())  # always an empty folder
        self.calls += 1
        (out / "weights.txt").write_text(f"conversion {self.calls}")


def test_conversion_runs_once_then_comes_from_the_cache(tmp_path: Path) -> None:
    convert = _Converter()
    first = cached_conversion(tmp_path, KEY, convert)
    again = cached_conversion(tmp_path, KEY, convert)
    assert first == again == tmp_path / "converted" / KEY.digest() and convert.calls == 1
    sidecar = json.loads((first / "conversion.json").read_text())
    assert sidecar["key"]["gguf_sha256"] == KEY.gguf_sha256 and sidecar["digest"] == KEY.digest()


def test_every_key_field_changes_the_folder(tmp_path: Path) -> None:
    others = [
        ConversionKey("cd" * 32, "5.0.0", "float32"),
        ConversionKey("ab" * 32, "5.0.1", "float32"),
        ConversionKey("ab" * 32, "5.0.0", "bfloat16"),
        ConversionKey("ab" * 32, "5.0.0", "float32", version=99),
    ]
    digests = {KEY.digest(), *(key.digest() for key in others)}
    assert len(digests) == 5


@pytest.mark.parametrize("damage", ["no sidecar", "wrong sidecar"])
def test_a_folder_without_a_matching_sidecar_is_converted_again(
    tmp_path: Path, damage: str
) -> None:
    convert = _Converter()
    folder = cached_conversion(tmp_path, KEY, convert)
    sidecar = folder / "conversion.json"
    if damage == "no sidecar":
        sidecar.unlink()  # as after an interrupted conversion
    else:
        sidecar.write_text(json.dumps({"key": {"gguf_sha256": "other"}}))
    assert cached_conversion(tmp_path, KEY, convert) == folder and convert.calls == 2
    assert (folder / "weights.txt").read_text() == "conversion 2"


def test_two_conversions_at_once_both_end_with_the_first_one_renamed(tmp_path: Path) -> None:
    inner = _Converter()

    def outer(out: Path) -> None:  # another process converts and renames first, meanwhile
        (out / "weights.txt").write_text("outer")
        assert (cached_conversion(tmp_path, KEY, inner) / "weights.txt").exists()

    folder = cached_conversion(tmp_path, KEY, outer)
    assert (folder / "weights.txt").read_text() == "conversion 1" and inner.calls == 1
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary left


def test_a_failed_conversion_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    def broken(out: Path) -> None:
        (out / "partial").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        cached_conversion(tmp_path, KEY, broken)
    assert not any((tmp_path / "converted").iterdir())  # no folder, no leftover .tmp
    assert cached_conversion(tmp_path, KEY, _Converter()).exists()


def test_default_device_is_the_cpu_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")
    assert LoadParams().torch_device() == torch.device("cpu")
    assert LoadParams(device="meta").torch_device() == torch.device("meta")


def _save_tiny(folder: Path, seed: int = 0) -> torch.nn.Module:
    model = tiny_llama(seed)
    model.save_pretrained(folder)
    word_tokenizer(["The capital of Japan is Tokyo"]).save_pretrained(folder)
    return model


def test_a_hugging_face_folder_loads_with_a_content_identity(tmp_path: Path) -> None:
    saved = _save_tiny(tmp_path / "m")
    loaded = load_model(tmp_path / "m", cache_dir=tmp_path / "cache", params=LoadParams())
    assert loaded.architecture.model_type == "llama" and not loaded.model.training
    for name, param in saved.named_parameters():
        assert torch.equal(loaded.model.get_parameter(name), param)
    assert loaded.tokenizer("Japan")["input_ids"][0] == loaded.tokenizer.bos_token_id
    assert loaded.identity.startswith("hf-sha256:") and loaded.source == tmp_path / "m"
    assert not (tmp_path / "cache").exists()  # folders are not converted

    again = load_model(tmp_path / "m", cache_dir=tmp_path / "cache")
    _save_tiny(tmp_path / "other", seed=1)
    other = load_model(tmp_path / "other", cache_dir=tmp_path / "cache")
    assert again.identity == loaded.identity != other.identity


def test_the_dtype_comes_from_the_params(tmp_path: Path) -> None:
    _save_tiny(tmp_path / "m")
    loaded = load_model(tmp_path / "m", cache_dir=tmp_path, params=LoadParams(dtype="bfloat16"))
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}


def test_missing_sources_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"expected a \.gguf file or a model folder"):
        load_model(tmp_path / "nope.gguf", cache_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match="no weight files"):
        load_model(tmp_path / "empty", cache_dir=tmp_path)


def test_a_gguf_file_is_keyed_by_its_contents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GGUF path: the conversion is cached under the file's sha256 (conversion faked)."""
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"not really a gguf")
    calls: list[Path] = []

    def fake_convert(path: Path, dtype: torch.dtype) -> Callable[[Path], None]:
        def convert(out: Path) -> None:
            calls.append(path)
            _save_tiny(out)

        return convert

    monkeypatch.setattr(loading, "_convert_gguf", fake_convert)
    first = load_model(gguf, cache_dir=tmp_path / "cache")
    second = load_model(gguf, cache_dir=tmp_path / "cache")
    assert calls == [gguf] and first.identity == second.identity
    assert first.identity == f"gguf-sha256:{loading.file_sha256(gguf)}"
    gguf.write_bytes(b"another file")
    load_model(gguf, cache_dir=tmp_path / "cache")
    assert len(calls) == 2
