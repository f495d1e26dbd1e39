"""The edit memory: edits in Chroma (the source of truth) and the fact graph derived from them."""

from kme_rag.memory.edit import Edit, EditStatus, normalise_name, parse_edit
from kme_rag.memory.embedder import Embedder, MiniLMEmbedder
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.store import EditMemory, SearchHit, UndoResult, open_chroma

__all__ = [
    "Edit",
    "EditMemory",
    "EditStatus",
    "Embedder",
    "FactGraph",
    "MiniLMEmbedder",
    "SearchHit",
    "UndoResult",
    "normalise_name",
    "open_chroma",
    "parse_edit",
]
