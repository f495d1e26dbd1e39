"""Where things are: paths, servers, models and threads, read from ``KME_*`` variables.

This is the only configuration of *location*. How a model is laid out lives in the
white-box architecture table; how a method behaves lives in that method's params class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "default_cache_dir", "default_data_dir", "default_store_dir"]


def default_store_dir() -> Path:
    """The per-user folder holding the embedded edit store."""
    return Path(platformdirs.user_data_dir("kme_rag")) / "store"


Keys = Annotated[tuple[str, ...], NoDecode]  # env: comma-separated, "k1,k2"


def default_data_dir() -> Path:
    """``../shared/data`` from the working directory when it is there, else beside the
    checkout this package runs from (so ``kme bench`` works from any folder of it)."""
    here = Path("../shared/data")  # made absolute by Settings' validator
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "shared" / "data"


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

    device: str | None = Field(
        default=None,
        description="Torch device for white-box editing (cpu, cuda, cuda:1); "
        "default: the first CUDA GPU when torch sees one, else the CPU.",
    )
    torch_threads: int | None = Field(
        default=None, ge=1, description="Torch CPU threads for white-box work; default: torch's."
    )
    weights_dir: Path | None = Field(
        default=None,
        description="Folder of applied weight deltas; default: 'weights' inside the store folder.",
    )
    weights_policy: Literal["memory", "weights", "fallback"] = Field(
        default="memory",
        description="memory: in-context editing only; weights: answer from the edited local "
        "weights; fallback: write an edit into the weights when the in-context route fails "
        "its own prompts, and answer that edit's queries from them.",
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Public benchmark data (CounterFact, ...); relative paths are made "
        "absolute at load, so subprocesses and other folders see the same one.",
    )

    # ---- the editing proxy (kme serve) ------------------------------------------------
    api_keys: Keys = Field(
        default=(),
        repr=False,
        description="Bearer keys that may call the model and read edits (comma-separated).",
    )
    admin_keys: Keys = Field(
        default=(),
        repr=False,
        description="Bearer keys that may also add, delete and undo edits (comma-separated).",
    )
    key_namespaces: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        repr=False,
        description='JSON {"key": ["namespace", ...]}: the namespaces a key may use '
        '(["*"]: any); a key not listed may use only the default namespace (KME_NAMESPACE).',
    )
    upstream_url: str | None = Field(
        default=None,
        description="Base URL of the OpenAI-compatible upstream (http://host:port/v1); "
        "none: the local llama.cpp model in-process.",
    )
    upstream_api_key: str | None = Field(
        default=None, repr=False, description="Bearer key the proxy sends to the upstream."
    )
    upstream_timeout_s: float = Field(
        default=120.0, gt=0, description="Seconds to wait for the upstream (connect and read)."
    )
    upstream_framing: Literal["auto", "chat", "qa"] = Field(
        default="auto",
        description="How in-scope chat goes upstream: chat (edits as a system message), qa "
        "(a Q/A completion, for base models); auto: qa for a local model without a chat "
        "template, chat for a remote upstream.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the proxy accepts."
    )
    serve_multihop: bool = Field(
        default=False,
        description="kme serve: walk multi-hop chat questions over the edits (route "
        "'multihop'); the hops the model answers go to the upstream. Off by default: it "
        "builds a relation bank per namespace (MQuAKE's templates, shipped in the package).",
    )
    refresh_interval_s: float = Field(
        default=0.5,
        gt=0,
        description="How often the proxy checks a shared Chroma server for other processes' edits.",
    )

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("api_keys", "admin_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @property
    def weights_root(self) -> Path:
        """Where applied weight deltas are kept (next to the embedded store by default)."""
        return self.weights_dir or self.store / "weights"
