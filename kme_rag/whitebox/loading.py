"""Loading a local causal LM for weight editing: a Hugging Face folder, or a GGUF file.

A GGUF file is dequantised by ``transformers`` (``gguf_file=``), which takes minutes on a
CPU, so the converted model is saved once under ``cache_dir/converted/<digest>`` where the
digest covers every input of the conversion (:class:`ConversionKey`: the file's sha256, the
``transformers`` version, the dtype, a format version) and a JSON sidecar names them. A
folder whose sidecar is missing or disagrees with its key is converted again.

Where the model runs comes from :class:`LoadParams` (what the caller asked for) or, by
default, :func:`default_device` — the settings layer of the white-box code and the one
place that names an accelerator. Below it, code reads the device from the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
import transformers
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig, PreTrainedTokenizerBase

from kme_rag.errors import ConfigurationError
from kme_rag.memory.embedder import file_sha256
from kme_rag.settings import Settings
from kme_rag.whitebox.architectures import Architecture, architecture_of

__all__ = [
    "CONVERSION_FORMAT_VERSION",
    "ConversionKey",
    "LoadParams",
    "LoadedModel",
    "cached_conversion",
    "default_device",
    "file_sha256",
    "load_from_settings",
    "load_model",
]

log = logging.getLogger(__name__)

CONVERSION_FORMAT_VERSION = 1
DType = Literal["float32", "bfloat16", "float16"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def default_device() -> torch.device:
    """The settings layer's device: the first CUDA GPU when torch sees one, else the CPU.

    This is the only function of the white-box code that names a device; everything below
    reads it from the model (:func:`kme_rag.whitebox.prompts.model_device`).
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True, kw_only=True)
class LoadParams:
    """How to place the model: ``device`` (``None``: :func:`default_device`) and ``dtype``."""

    device: str | None = None
    dtype: DType = "float32"

    def torch_dtype(self) -> torch.dtype:
        dtype = getattr(torch, self.dtype)
        assert isinstance(dtype, torch.dtype)
        return dtype

    def torch_device(self) -> torch.device:
        return default_device() if self.device is None else torch.device(self.device)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for editing, with what the rest of the white-box code needs about it.

    ``identity`` names the weights for cache keys (e.g. :class:`~kme_rag.whitebox.second_moments.
    StatsKey.model`): ``gguf-sha256:<hex>`` or ``hf-sha256:<hex>``, a content hash.
    """

    model: nn.Module
    tokenizer: PreTrainedTokenizerBase
    architecture: Architecture
    identity: str
    source: Path


@dataclass(frozen=True)
class ConversionKey:
    """Every input of a GGUF → torch conversion; its :meth:`digest` names the cache folder."""

    gguf_sha256: str
    transformers_version: str
    dtype: str
    version: int = CONVERSION_FORMAT_VERSION

    def digest(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def _folder_sha256(folder: Path) -> str:
    """sha256 over a model folder's config and weight files (names and contents)."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in folder.iterdir() if p.name == "config.json" or p.suffix in _WEIGHT_SUFFIXES
    )
    if not any(p.suffix in _WEIGHT_SUFFIXES for p in files):
        raise ConfigurationError(f"no weight files (*.safetensors, *.bin) in {str(folder)!r}")
    for path in files:
        digest.update(f"{path.name}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def cached_conversion(cache_dir: Path, key: ConversionKey, convert: Callable[[Path], None]) -> Path:
    """The folder holding the converted model: from the cache, or ``convert(folder)`` first.

    ``convert`` writes into an empty temporary folder of its own, which gets its
    sidecar ``conversion.json`` and is then renamed into place, so the folder appears whole
    or not at all; a folder without a matching sidecar (left by an older version) is
    deleted and converted again. Two processes converting at once (two ``bench all`` lanes
    on a fresh machine) both finish; the second's rename fails and it uses the first's.
    """
    folder = cache_dir / "converted" / key.digest()
    sidecar = folder / "conversion.json"

    def matches() -> bool:
        return sidecar.exists() and json.loads(sidecar.read_text()).get("key") == asdict(key)

    if matches():
        log.info("converted model: cache hit %s", folder)
        return folder
    if folder.exists():
        log.warning("discarding %s: its sidecar is missing or does not match", folder)
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        convert(tmp)
        blob = json.dumps({"key": asdict(key), "digest": key.digest()}, indent=2)
        (tmp / sidecar.name).write_text(blob)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, folder)
    except OSError:  # another process renamed its conversion into place first
        shutil.rmtree(tmp, ignore_errors=True)
        if not matches():
            raise
        log.info("converted model: another process converted it first, %s", folder)
    return folder


def _convert_gguf(path: Path, dtype: torch.dtype) -> Callable[[Path], None]:
    def convert(out: Path) -> None:
        log.info("converting %s to torch (%s); this takes a while once", path.name, dtype)
        start = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent),
            gguf_file=path.name,
            dtype=dtype,
            quantization_config=GgufConfig(dequantize=True),  # dense weights, never packed
        )
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:  # the weights are plain tensors now; let them be saved
            quantizer.remove_quantization_config(model)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        log.info("converted %s in %.1f s", path.name, time.perf_counter() - start)

    return convert


def _from_folder(folder: Path, dtype: torch.dtype) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert isinstance(model, nn.Module)
    return model, tokenizer


def load_model(source: Path, *, cache_dir: Path, params: LoadParams | None = None) -> LoadedModel:
    """Load a causal LM from a Hugging Face folder or a ``.gguf`` file, in eval mode.

    A GGUF file is converted once and cached under ``cache_dir`` (see the module docstring).
    Raises :class:`ConfigurationError` for a missing source and :class:`WhiteboxError` for
    an architecture the table does not know.
    """
    params = params or LoadParams()
    dtype = params.torch_dtype()
    if source.is_file() and source.suffix == ".gguf":
        sha = file_sha256(source)
        key = ConversionKey(sha, transformers.__version__, params.dtype)
        folder = cached_conversion(cache_dir, key, _convert_gguf(source, dtype))
        identity = f"gguf-sha256:{sha}"
    elif source.is_dir():
        folder, identity = source, f"hf-sha256:{_folder_sha256(source)}"
    else:
        raise ConfigurationError(f"expected a .gguf file or a model folder, got {str(source)!r}")
    model, tokenizer = _from_folder(folder, dtype)
    model.to(params.torch_device()).eval()
    return LoadedModel(model, tokenizer, architecture_of(model), identity, source)


def load_from_settings(settings: Settings, params: LoadParams | None = None) -> LoadedModel:
    """The model ``settings.model_path`` names (default: the bundled Gemma 3 270M GGUF)."""
    from kme_rag.backends import bundled_model_path

    source = settings.model_path or bundled_model_path()
    return load_model(source, cache_dir=settings.cache_dir, params=params)
