"""Where things are: paths, servers, models and threads, read from ``KME_*`` variables.

This is the only configuration of *location*. How a model is laid out lives in the
white-box architecture table; how a method behaves lives in that method's params class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_cache_dir", "default_store_dir"]


def default_store_dir() -> Path:
    """The per-user folder holding the embedded edit store."""
    return Path(platformdirs.user_data_dir("kme_rag")) / "store"


def default_cache_dir() -> Path:
    """The per-user folder for derived artefacts (ONNX exports, converted weights)."""
    return Path(platformdirs.user_cache_dir("kme_rag"))


class Settings(BaseSettings):
    """Locations and resources, one field per ``KME_<NAME>`` environment variable."""

    model_config = SettingsConfigDict(env_prefix="KME_", frozen=True, extra="forbid")

    store: Path = Field(default_factory=default_store_dir, description="Embedded Chroma folder.")
    chroma_url: str | None = Field(
        default=None,
        description="URL of a Chroma server (http://host:port); when set the store lives there.",
    )
    collection: str = Field(default="kme_edits", min_length=3, max_length=63)
    namespace: str = Field(default="default", min_length=1, max_length=128)
    known_namespace: str | None = Field(
        default=None,
        description="Namespace of trusted *unedited* facts that answer multi-hop hops "
        "before the model does (known-facts mode; off by default).",
    )

    embedder_path: Path | None = Field(
        default=None,
        description="Sentence-transformers folder; default: packaged all-MiniLM-L6-v2.",
    )
    embedder_runtime: Literal["onnx", "torch"] = "onnx"
    embed_threads: int | None = Field(
        default=None, ge=1, description="Threads for the embedder; default: all cores."
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir, description="Derived artefacts, keyed by inputs."
    )

    backend: Literal["llama", "openai"] = "llama"
    model_path: Path | None = Field(
        default=None, description="GGUF file for the llama backend; default: bundled Gemma 3 270M."
    )
    n_ctx: int = Field(default=2048, ge=256)
    n_threads: int | None = Field(
        default=None, ge=1, description="llama.cpp generation threads; default: all cores."
    )
    n_threads_batch: int | None = Field(
        default=None, ge=1, description="llama.cpp prompt threads; default: all cores."
    )

    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_model: str | None = None
    request_timeout_s: float = Field(default=120.0, gt=0)

    data_dir: Path = Field(
        default=Path("../shared/data"), description="Public benchmark data (CounterFact, ...)."
    )
