"""kme_rag: edit what a language model knows, without retraining it."""

from kme_rag.backends import (
    Backend,
    CallableBackend,
    LlamaCppBackend,
    Message,
    OpenAIBackend,
    make_backend,
)
from kme_rag.editor import Answer, EditorParams, KnowledgeEditor
from kme_rag.errors import KmeError
from kme_rag.memory import Edit, EditMemory, Embedder, FactGraph, MiniLMEmbedder, SearchHit
from kme_rag.multihop.walk import GraphWalker, build_walker
from kme_rag.scope import ScopeModel, SimilarityScope, TrainedScope
from kme_rag.settings import Settings
from kme_rag.wrappers import wrap

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Backend",
    "CallableBackend",
    "Edit",
    "EditMemory",
    "EditorParams",
    "Embedder",
    "FactGraph",
    "GraphWalker",
    "KmeError",
    "KnowledgeEditor",
    "LlamaCppBackend",
    "Message",
    "MiniLMEmbedder",
    "OpenAIBackend",
    "ScopeModel",
    "SearchHit",
    "Settings",
    "SimilarityScope",
    "TrainedScope",
    "__version__",
    "build_walker",
    "make_backend",
    "wrap",
]
