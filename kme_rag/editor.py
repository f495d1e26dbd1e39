"""The KnowledgeEditor: answers from any backend, with the stored edits applied.

One-way flow: retrieve candidate edits → decide scope → build the prompt → call the
backend → :class:`Answer`. Out of scope, the *exact original input* goes to the backend,
so an unrelated answer is the unedited model's answer, character for character.

In scope of a structured edit, the answer is built from an IKE prompt (the edit as "New
Fact", plus demonstrations when a pool is given) and, with ``answer="prefill"``, the new
object is written as the start of the answer and the model continues from it — the
constrained decoding that lets a 270M base model state the new object on reworded
questions. Chat-native backends get the edits as a system message instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from kme_rag.backends import Backend, Message, qa_transcript
from kme_rag.errors import ContextOverflowError, ValidationError
from kme_rag.ike import DemoPool, IKEParams, chat_messages, demonstrations, fact_block
from kme_rag.memory.edit import Edit
from kme_rag.memory.store import EditMemory, SearchHit
from kme_rag.scope.base import ScopeDecision, ScopeModel
from kme_rag.scope.similarity import SimilarityScope

__all__ = ["Answer", "EditorParams", "KnowledgeEditor", "Route"]

Route = Literal["passthrough", "ike", "multihop", "weights"]
ANSWER_STOP = ("\n",)


@dataclass(frozen=True)
class Answer:
    """What the editor answered, how, with which edits, and what it cost."""

    text: str
    route: Route
    edits: tuple[Edit, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    sent: str | list[Message] = ""

    @property
    def edit_ids(self) -> list[str]:
        return [e.id for e in self.edits]


@dataclass(frozen=True)
class EditorParams:
    """How the editor behaves.

    ``gate``: False sends every query with its nearest edit to IKE (the ungated IKE
    baseline); True asks the scope model first. ``answer``: ``prefill`` starts in-scope
    answers with the edit's new object, ``generate`` lets the model write the whole answer.
    """

    k: int = 4
    gate: bool = True
    answer: Literal["prefill", "generate"] = "prefill"
    max_tokens: int = 24
    ike: IKEParams = field(default_factory=lambda: IKEParams(k_copy=0, k_update=0, k_retain=0))


class KnowledgeEditor:
    """Wraps a backend and an edit memory; ``ask``, ``complete`` and ``chat`` apply edits."""

    def __init__(
        self,
        backend: Backend,
        memory: EditMemory,
        *,
        scope: ScopeModel | None = None,
        demos: DemoPool | None = None,
        params: EditorParams | None = None,
    ) -> None:
        self.backend = backend
        self.memory = memory
        self.scope: ScopeModel = scope or SimilarityScope()
        self.demos = demos
        self.params = params or EditorParams()

    # ---- the flow ------------------------------------------------------------------------

    def _decide(self, query: str, timings: dict[str, float]) -> tuple[ScopeDecision, np.ndarray]:
        start = time.perf_counter()
        vector = self.memory.embedder.embed([query])
        hits: list[SearchHit] = self.memory.search(query, k=self.params.k, vector=vector)
        timings["retrieve_ms"] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        if not self.params.gate:
            decision = ScopeDecision(tuple(h.edit for h in hits[:1]), tuple(h.score for h in hits))
        else:
            decision = self.scope.decide(query, hits)
        timings["scope_ms"] = (time.perf_counter() - start) * 1000
        return decision, vector

    def _ike_head(self, vector: np.ndarray) -> str:
        if self.demos is None:
            return ""
        return demonstrations(self.demos.select(vector[0], self.params.ike))

    def _prefill(self, edits: Sequence[Edit]) -> str:
        edit = edits[0]
        if self.params.answer == "prefill" and edit.structured and self.params.gate:
            return f" {edit.target_new}"
        return ""

    def _complete_in_scope(self, head: str, edits: Sequence[Edit], query: str) -> tuple[str, str]:
        forced = self._prefill(edits)
        for prefix in (head, ""):  # drop the demonstrations if the prompt does not fit
            prompt = prefix + fact_block(edits, query) + forced
            try:
                text = self.backend.complete(
                    prompt, max_tokens=self.params.max_tokens, stop=ANSWER_STOP
                )
            except ContextOverflowError:
                if not prefix:
                    raise
                continue
            return forced + text, prompt
        raise AssertionError("unreachable")

    def _finish(
        self,
        start: float,
        timings: dict[str, float],
        call_start: float,
        text: str,
        route: Route,
        edits: Sequence[Edit],
        sent: str | list[Message],
    ) -> Answer:
        end = time.perf_counter()
        timings["backend_ms"] = (end - call_start) * 1000
        timings["total_ms"] = (end - start) * 1000
        return Answer(text, route, tuple(edits), timings, sent)

    # ---- public API ----------------------------------------------------------------------

    def complete(self, prompt: str) -> Answer:
        """Continue ``prompt`` (a cloze such as "The Eiffel Tower is in the city of")."""
        if not prompt.strip():
            raise ValidationError(f"expected a non-empty prompt, got {prompt!r}")
        start, timings = time.perf_counter(), dict[str, float]()
        decision, vector = self._decide(prompt, timings)
        call = time.perf_counter()
        if not decision.any:
            text = self.backend.complete(prompt, max_tokens=self.params.max_tokens)
            return self._finish(start, timings, call, text, "passthrough", (), prompt)
        text, sent = self._complete_in_scope(self._ike_head(vector), decision.in_scope, prompt)
        return self._finish(start, timings, call, text, "ike", decision.in_scope, sent)

    def chat(self, messages: Sequence[Message]) -> Answer:
        """Answer the last user message of a conversation."""
        if not messages or messages[-1]["role"] != "user":
            raise ValidationError("expected a conversation that ends with a user message")
        query = messages[-1]["content"]
        if not query.strip():
            raise ValidationError(f"expected a non-empty question, got {query!r}")
        start, timings = time.perf_counter(), dict[str, float]()
        decision, vector = self._decide(query, timings)
        call = time.perf_counter()
        if not decision.any:
            text = self.backend.chat(messages, max_tokens=self.params.max_tokens)
            return self._finish(start, timings, call, text, "passthrough", (), list(messages))
        edits = decision.in_scope
        if getattr(self.backend, "chat_native", False):
            sent = chat_messages(edits, messages)
            text = self.backend.chat(sent, max_tokens=self.params.max_tokens)
            return self._finish(start, timings, call, text, "ike", edits, sent)
        history = qa_transcript(messages[:-1])
        text, prompt = self._complete_in_scope(self._ike_head(vector) + history, edits, query)
        return self._finish(start, timings, call, text.strip(), "ike", edits, prompt)

    def ask(self, question: str) -> Answer:
        """Answer one question (a one-turn chat)."""
        return self.chat([{"role": "user", "content": question}])

    async def acomplete(self, prompt: str) -> Answer:
        return await asyncio.to_thread(self.complete, prompt)

    async def achat(self, messages: Sequence[Message]) -> Answer:
        return await asyncio.to_thread(self.chat, messages)

    async def aask(self, question: str) -> Answer:
        return await asyncio.to_thread(self.ask, question)
