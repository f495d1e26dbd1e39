"""The terminal chat session: turns through the editor, edit commands between them."""

from __future__ import annotations

from pathlib import Path

from kme_rag.backends import CallableBackend
from kme_rag.chat import ChatSession
from kme_rag.editor import KnowledgeEditor
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings


def test_chat_session_edits_between_turns(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    prompts: list[str] = []

    def model(prompt: str) -> str:
        prompts.append(prompt)
        return " Tokyo"

    memory = EditMemory.open(Settings(store=tmp_path / "store"), embedder=embedder)
    session = ChatSession(KnowledgeEditor(CallableBackend(model), memory))
    assert session.handle("What is the capital of Japan?") == "Tokyo"
    added = session.handle("/edit Japan | capital | Kyoto")
    assert added is not None and added.startswith("added e_")
    reply = session.handle("And what is the capital of Japan now?")
    assert reply is not None and reply.startswith("Kyoto") and "[edits used: e_" in reply
    assert "Q: What is the capital of Japan?\nA: Tokyo\n" in prompts[-1]  # history kept
    assert "The capital of Japan is Kyoto." in (session.handle("/edits") or "")
    assert (session.handle("/undo") or "").startswith("undid add")
    assert session.handle("/edits") == "(no edits)"
    assert (session.handle("/edit only two | parts") or "").startswith("usage:")
    assert (session.handle("/edit  | capital | x") or "").startswith("error: invalid edit")
    assert session.handle("/quit") is None
