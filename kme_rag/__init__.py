"""kme_rag: edit what a language model knows, without retraining it."""

from kme_rag.backends import (
    Backend,
    CallableBackend,
    LlamaCppBackend,
    Message,
    OpenAIBackend,
    make_backend,
)
from kme_rag.errors import KmeError
from kme_rag.memory import Edit, EditMemory, Embedder, FactGraph, MiniLMEmbedder, SearchHit
from kme_rag.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "CallableBackend",
    "Edit",
    "EditMemory",
    "Embedder",
    "FactGraph",
    "KmeError",
    "LlamaCppBackend",
    "Message",
    "MiniLMEmbedder",
    "OpenAIBackend",
    "SearchHit",
    "Settings",
    "__version__",
    "make_backend",
]
