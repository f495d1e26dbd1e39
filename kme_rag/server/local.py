"""The local llama.cpp model as an in-process upstream: llama.cpp's own
OpenAI-compatible app (``llama_cpp.server``), on the model the settings name.

llama_cpp.server keeps its model in module state, so a process holds one local model.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from kme_rag.backends import bundled_model_path
from kme_rag.errors import ConfigurationError

if TYPE_CHECKING:
    from kme_rag.settings import Settings

__all__ = ["LOCAL_MODEL_ALIAS", "local_has_chat_template", "local_llama_app"]

LOCAL_MODEL_ALIAS = "local"


def _model_path(settings: Settings) -> str:
    path = settings.model_path or bundled_model_path()
    if not path.is_file():
        raise ConfigurationError(f"model file not found: {str(path)!r}")
    return str(path)


def local_llama_app(settings: Settings) -> Any:
    """llama_cpp.server's ASGI app on the local model (loaded now)."""
    try:
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError as exc:
        raise ConfigurationError(
            "serving the local model needs llama_cpp.server: pip install 'kme_rag[server]'"
        ) from exc
    threads = settings.n_threads or os.cpu_count() or 1
    model = ModelSettings(
        model=_model_path(settings),
        model_alias=LOCAL_MODEL_ALIAS,
        n_ctx=settings.n_ctx,
        n_threads=threads,
        n_threads_batch=settings.n_threads_batch or threads,
        verbose=False,
    )
    # Concurrent clients must not cut each other's streams off.
    server = ServerSettings(interrupt_requests=False)
    return create_app(server_settings=server, model_settings=[model])


def local_has_chat_template(settings: Settings) -> bool:
    """Whether the local GGUF carries a chat template (read from its header only)."""
    from gguf import GGUFReader

    reader = GGUFReader(_model_path(settings))
    return "tokenizer.chat_template" in reader.fields
