"""The KnowledgeEditor: answers from any backend, with the stored edits applied.

One-way flow: retrieve candidate edits → decide scope → build the prompt (a
:class:`Plan`) → call the backend → :class:`Answer`. Out of scope, the plan is the
*exact original input*, so an unrelated answer is the unedited model's answer,
character for character.

In scope of a structured edit, the prompt is an IKE prompt (the edit as "New Fact",
plus demonstrations when a pool is given) and, with ``answer="prefill"``, the new object
is written as the start of the answer and the model continues from it: constrained
decoding, which lets a 270M base model state the new object on reworded questions.
Chat-native backends get the edits as a system message instead, quoted as data in a
``<facts>`` block (:func:`~kme_rag.ike.quoted_facts`).

With a local model whose weights carry edits (:class:`WeightsModel`, the white-box
:class:`~kme_rag.whitebox.session.WeightEditor`), ``EditorParams.weights_policy`` picks who
answers: ``memory`` (in-context only, the default), ``weights`` (every query goes, as it
is, to the edited weights: route ``weights``) or ``fallback`` (:meth:`KnowledgeEditor.
add_edit` checks the in-context route on the edit's own prompt and paraphrases; an edit it
fails is written into the weights, and queries naming that edit's subject are answered
from them).

Planning is public (:meth:`KnowledgeEditor.plan_completion`, :meth:`plan_chat`) so that
wrappers around a user's own client can send the planned input with the user's options.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from kme_rag.backends import Backend, Message, qa_transcript
from kme_rag.conversation import resolve_followup
from kme_rag.errors import ContextOverflowError, ValidationError
from kme_rag.ike import (
    DemoPool,
    IKEParams,
    chat_messages,
    demonstrations,
    fact_block,
    question_block,
)
from kme_rag.matching import contains_answer
from kme_rag.memory.aliases import subject_names
from kme_rag.memory.edit import Edit, normalise_name
from kme_rag.memory.mention import find_mention
from kme_rag.memory.store import EditMemory, SearchHit
from kme_rag.multihop.walk import GraphWalker, Hop, looks_composed
from kme_rag.scope.base import ScopeDecision, ScopeModel, mentions_subject
from kme_rag.scope.classifier import TrainedScope

if TYPE_CHECKING:
    from kme_rag.settings import Settings

__all__ = [
    "Answer",
    "EditCheck",
    "EditorParams",
    "KnowledgeEditor",
    "Plan",
    "Route",
    "WeightsModel",
    "WeightsPolicy",
]

Route = Literal["passthrough", "ike", "multihop", "weights"]
WeightsPolicy = Literal["memory", "weights", "fallback"]
ANSWER_STOP = ("\n",)
# After a prefilled object the answer is complete; the model may add a word or two
# ("Kyoto City") but not a clause ("Rome, France").
PREFILL_STOP = ("\n", ",", ".", ";", " and ", " but ")


@dataclass(frozen=True)
class Answer:
    """What the editor answered, how, with which edits, and what it cost."""

    text: str
    route: Route
    edits: tuple[Edit, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    sent: str | list[Message] = ""
    hops: tuple[Hop, ...] = ()  # route "multihop": each hop's question, answer and source
    question: str = ""  # a follow-up as the scope step read it, when it was resolved

    @property
    def edit_ids(self) -> list[str]:
        return [e.id for e in self.edits]


@dataclass(frozen=True)
class Plan:
    """What to send the model: a completion ``prompt`` or chat ``messages``.

    ``prefill`` is answer text already decided (the new object); the model's output
    continues it, and the final answer is ``prefill + output``. ``stop`` is empty for a
    pass-through, so the user's own options apply unchanged.

    Route ``multihop`` is a question to walk over the edits (:meth:`KnowledgeEditor.
    settle` runs the walk); when the walk does not answer it, ``fallback`` is the plan
    (in-context or pass-through) to run instead. ``question`` is the question the scope
    step judged when it is not the last turn as typed: a resolved follow-up
    (:func:`~kme_rag.conversation.resolve_followup`).
    """

    route: Route
    edits: tuple[Edit, ...]
    prompt: str | None = None
    messages: list[Message] | None = None
    prefill: str = ""
    stop: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    related: tuple[Edit, ...] = ()  # edits whose subject the query names, not in scope
    question: str = ""
    fallback: Plan | None = None


class WeightsModel(Protocol):
    """A local model whose weights carry edits (see :mod:`kme_rag.whitebox.session`)."""

    @property
    def backend(self) -> Backend:
        """Answers from the edited weights."""
        ...

    def edit_ids(self) -> frozenset[str]:
        """Ids of the edits written into the weights now."""
        ...

    def write(self, edits: Sequence[Edit]) -> object:
        """Write ``edits`` into the weights (ROME)."""
        ...


@dataclass(frozen=True)
class EditCheck:
    """What :meth:`KnowledgeEditor.add_edit` found: each probe's answer through the
    in-context route, and whether the edit was written into the weights for it."""

    edit: Edit
    probes: tuple[tuple[str, str, bool], ...] = ()  # (prompt, answer, states the new object)
    written: bool = False

    @property
    def passed(self) -> bool:
        return all(ok for _, _, ok in self.probes)


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
    weights_policy: WeightsPolicy = "memory"
    ike: IKEParams = field(default_factory=lambda: IKEParams(k_copy=0, k_update=0, k_retain=0))


def _named_at(query: str, edit: Edit) -> int:
    """Where ``query`` names ``edit``'s subject (its length when it does not)."""
    mention = find_mention(query, subject_names(edit))
    return mention.start if mention.exact else len(query)


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
        multihop: GraphWalker | None = None,
        weights: WeightsModel | None = None,
    ) -> None:
        self.backend = backend
        self.memory = memory
        self.scope: ScopeModel = scope or TrainedScope(memory.embedder)
        self.demos = demos
        self.params = params or EditorParams()
        self.multihop = multihop
        self.weights = weights
        if self.params.weights_policy != "memory" and weights is None:
            raise ValidationError(
                f"weights_policy {self.params.weights_policy!r} needs a local weights model"
            )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        memory: EditMemory,
        *,
        backend: Backend | None = None,
        answer: Literal["prefill", "generate"] = "prefill",
    ) -> KnowledgeEditor:
        """The editor ``kme ask`` and ``kme chat`` use: the settings' backend (or
        ``backend``), the shipped scope, default parameters (``answer`` aside: benchmarks
        measure the generated answer too), the graph walk over ``memory``'s edits as
        they are now, and with ``KME_WEIGHTS_POLICY`` other than ``memory`` the local
        weights (and the deltas stored for them)."""
        from kme_rag.backends import make_backend
        from kme_rag.multihop.walk import build_walker

        model = backend or make_backend(settings)
        weights = None
        if settings.weights_policy != "memory":
            from kme_rag.whitebox.session import WeightEditor

            weights = WeightEditor.open(settings)
        return cls(
            model,
            memory,
            multihop=build_walker(settings, model, memory),
            weights=weights,
            params=EditorParams(weights_policy=settings.weights_policy, answer=answer),
        )

    # ---- planning (pure but for retrieval) -------------------------------------------------

    def _decide(
        self, query: str, timings: dict[str, float]
    ) -> tuple[ScopeDecision, tuple[Edit, ...]]:
        """The scope decision and the *related* edits: candidates whose subject the query
        names but that are not in scope (a multi-hop question may run through them)."""
        if not query.strip():
            raise ValidationError(f"expected a non-empty query, got {query!r}")
        start = time.perf_counter()
        hits = self.memory.candidates(query, k=self.params.k)
        timings["retrieve_ms"] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        if self.params.gate:
            decision = self.scope.decide(query, hits)
        else:
            decision = ScopeDecision(tuple(h.edit for h in hits[:1]), tuple(h.score for h in hits))
        timings["scope_ms"] = (time.perf_counter() - start) * 1000
        return decision, self._related(query, hits, decision)

    @staticmethod
    def _related(
        query: str, hits: Sequence[SearchHit], decision: ScopeDecision
    ) -> tuple[Edit, ...]:
        chosen = {e.id for e in decision.in_scope}
        return tuple(
            h.edit for h in hits if h.edit.id not in chosen and mentions_subject(query, h.edit)
        )

    def _weights_route(
        self, decision: ScopeDecision, related: Sequence[Edit]
    ) -> tuple[Edit, ...] | None:
        """The edits a query is answered from the weights for, or None for the memory
        route: policy ``weights`` sends every query; ``fallback`` those naming the subject
        of an edit that was written into the weights."""
        policy = self.params.weights_policy
        if self.weights is None or policy == "memory":
            return None
        if policy == "weights":
            return decision.in_scope
        served = self.weights.edit_ids()
        chosen = tuple(e for e in (*decision.in_scope, *related) if e.id in served)
        return chosen or None

    def _head(self, query: str, with_demos: bool) -> str:
        """IKE demonstrations nearest the query (only when a demonstration pool is set)."""
        if self.demos is None or not with_demos:
            return ""
        vector = self.memory.embedder.embed([query])[0]  # (dim,)
        return demonstrations(self.demos.select(vector, self.params.ike))

    def _prefill(self, edits: Sequence[Edit], query: str) -> str:
        """The answer's start: the new object of the in-scope edit; with several (a
        question about two edited facts: "What are the capitals of Canada and
        Kenya?"), every one's object, in the order the question names their subjects."""
        if self.params.answer != "prefill" or not self.params.gate:
            return ""
        if not edits[0].structured:
            return ""
        stated = [e for e in edits if e.structured and e.target_new]
        if len(stated) > 1:
            stated.sort(key=lambda e: _named_at(query, e))
        objects = list(dict.fromkeys(e.target_new or "" for e in stated))
        if len(objects) == 1:
            return f" {objects[0]}"
        return " " + ", ".join(objects[:-1]) + f" and {objects[-1]}"

    def plan_completion(self, prompt: str, *, with_demos: bool = True) -> Plan:
        """The plan for continuing ``prompt`` (a cloze such as "The Eiffel Tower is in")."""
        timings: dict[str, float] = {}
        decision, related = self._decide(prompt, timings)
        if (weighted := self._weights_route(decision, related)) is not None:
            return Plan("weights", weighted, prompt=prompt, timings_ms=timings)
        if not decision.any:
            return Plan("passthrough", (), prompt=prompt, timings_ms=timings, related=related)
        edits, forced = decision.in_scope, self._prefill(decision.in_scope, prompt)
        text = self._head(prompt, with_demos) + fact_block(edits, prompt) + forced
        stop = PREFILL_STOP if forced else ANSWER_STOP
        return Plan("ike", edits, prompt=text, prefill=forced, stop=stop, timings_ms=timings)

    def _mentioned(self, text: str) -> list[Edit]:
        """This namespace's edits whose subject ``text`` names."""
        namespace = self.memory.namespace
        return [e for e in self.memory.graph.mentioned(text) if e.namespace == namespace]

    def plan_chat(
        self, messages: Sequence[Message], *, native: bool, with_demos: bool = True
    ) -> Plan:
        """The plan for answering the last user message: messages for a chat-native model,
        a Q/A-framed completion prompt for a base model, or route ``multihop`` (with the
        plan to fall back on) for a question the walk may answer. A follow-up turn ("Which
        city is it in?") is judged as the conversation resolves it."""
        if not messages or messages[-1]["role"] != "user":
            raise ValidationError("expected a conversation that ends with a user message")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        resolved = resolve_followup(messages, self._mentioned)
        if resolved is not None:
            timings["followup_ms"] = (time.perf_counter() - start) * 1000
        query = resolved or messages[-1]["content"]
        asked = resolved or ""
        decision, related = self._decide(query, timings)
        edits = decision.in_scope
        if (weighted := self._weights_route(decision, related)) is not None:
            return Plan("weights", weighted, messages=list(messages), timings_ms=timings)
        if not decision.any:
            sent = list(messages)
            plan = Plan(
                "passthrough",
                (),
                messages=sent,
                timings_ms=timings,
                related=related,
                question=asked,
            )
        elif native:
            sent = chat_messages(edits, messages)
            plan = Plan("ike", edits, messages=sent, timings_ms=timings, question=asked)
        else:
            forced = self._prefill(edits, query)
            head = self._head(query, with_demos) + qa_transcript(messages[:-1])
            text = head + question_block(edits, query) + forced
            stop = PREFILL_STOP if forced else ANSWER_STOP
            plan = Plan(
                "ike",
                edits,
                prompt=text,
                prefill=forced,
                stop=stop,
                timings_ms=timings,
                question=asked,
            )
        if self._may_walk(plan, query):
            return Plan(
                "multihop",
                plan.edits,
                timings_ms=timings,
                related=plan.related,
                question=asked,
                fallback=plan,
            )
        return plan

    def _may_walk(self, plan: Plan, query: str) -> bool:
        """Whether the walk may answer the plan's question: a walker is set and the
        question names an edited subject — in scope or not — or is in scope of an edit
        whose object has edits of its own, or is worded as a composition
        (:func:`~kme_rag.multihop.walk.looks_composed`: an edit may sit on a later hop,
        behind a subject the model resolves). A look at the graph and a regular
        expression; no model call."""
        if self.multihop is None:
            return False
        graph = self.memory.graph
        onward = [e for e in plan.edits if e.target_new and graph.facts(e.target_new)]
        return bool(plan.related or onward) or (bool(graph.edits()) and looks_composed(query))

    # ---- running plans -------------------------------------------------------------------

    def _run(self, plan: Plan, start: float, *, chat: bool) -> Answer:
        call = time.perf_counter()
        tokens = self.params.max_tokens
        if plan.route == "weights":
            assert self.weights is not None
            model = self.weights.backend
            if plan.messages is not None:
                text = model.chat(plan.messages, max_tokens=tokens)
            else:
                text = model.complete(plan.prompt or "", max_tokens=tokens)
        elif plan.route == "passthrough" and plan.messages is not None:
            text = self.backend.chat(plan.messages, max_tokens=tokens)
        elif plan.prompt is not None:
            text = self.backend.complete(plan.prompt, max_tokens=tokens, stop=plan.stop)
            text = plan.prefill + text
            text = text.strip() if chat and plan.route != "passthrough" else text
        else:
            assert plan.messages is not None
            text = self.backend.chat(plan.messages, max_tokens=tokens)
        end = time.perf_counter()
        timings = {**plan.timings_ms, "backend_ms": (end - call) * 1000}
        timings["total_ms"] = (end - start) * 1000
        sent: str | list[Message] = plan.prompt if plan.prompt is not None else plan.messages or []
        return Answer(text, plan.route, plan.edits, timings, sent, question=plan.question)

    def complete(self, prompt: str) -> Answer:
        """Continue ``prompt``, with the edits applied when it is in scope of one."""
        start = time.perf_counter()
        try:
            return self._run(self.plan_completion(prompt), start, chat=False)
        except ContextOverflowError:
            if self.demos is None:
                raise
            return self._run(self.plan_completion(prompt, with_demos=False), start, chat=False)

    def walk(self, query: str, plan: Plan, start: float) -> Answer | None:
        """Route ``multihop``: a question naming an edited subject that no edit is in
        scope of — or in scope of an edit whose object has edits of its own — is walked
        hop by hop. Its answer is used when

        - the question composes relations (its best chain has two hops or more and beats
          every single relation by ``WalkParams.composition_margin``; "How tall is the
          Eiffel Tower?" after an edit of its city asks one relation, and is the scope
          step's to decide), or a hop was answered by a *path* of edits (a ripple:
          "Which country is the Eiffel Tower in?" after Eiffel Tower → Rome and Rome →
          Italy); a single-relation question is walked at all only when a named edit's
          object has edits of its own;
        - one of its hops came from an edit (otherwise the question is the model's,
          untouched), and, for an in-scope question, it differs from the edit's own object.

        Adapters run it through :meth:`settle`; ``start`` is when the request began (for
        ``timings_ms``)."""
        if self.multihop is None:
            return None
        graph = self.memory.graph
        onward = [e for e in plan.edits if e.target_new and graph.facts(e.target_new)]
        named = bool(plan.related or onward)
        worded = looks_composed(query)
        if not named and not worded:
            return None
        rippling = onward or [e for e in plan.related if e.target_new and graph.facts(e.target_new)]
        call = time.perf_counter()
        result = self.multihop.answer(
            query,
            fallback=False,
            composed_only=not rippling,
            through_edits=not named,
            worded=worded,
            edits_only=True,
        )
        ids = set(result.edits_used)
        used = [e for e in graph.edits() if e.id in ids]
        if result.text is None or not used:
            return None
        ripple = any(h.source == "edit" and "+" in (h.edit_id or "") for h in result.hops)
        # worded as a composition, its chain has two hops or more; else it must beat
        # every single relation by the margin that keeps single-relation questions out
        composed = worded or result.composed(self.multihop.params.composition_margin)
        if not ripple and not composed:
            return None  # one relation, answered by one edit: the scope step's question
        direct = {normalise_name(e.target_new or "") for e in plan.edits}
        if plan.edits and normalise_name(result.text) in direct and len(result.hops) < 2:
            return None  # one hop agreeing with the in-scope edit: answer it directly
        end = time.perf_counter()
        timings = {**plan.timings_ms, "multihop_ms": (end - call) * 1000}
        timings["total_ms"] = (end - start) * 1000
        sent = [h.question for h in result.hops]
        return Answer(
            result.text,
            "multihop",
            tuple(used),
            timings,
            "\n".join(sent),
            result.hops,
            question=plan.question,
        )

    def settle(self, plan: Plan, query: str, start: float | None = None) -> Answer | Plan:
        """Run a ``multihop`` plan's walk: its :class:`Answer`, or the fallback plan to
        send when the walk does not answer (any other plan is returned as it is). The one
        step every adapter (chat, the proxy, the wrappers) runs between planning and
        sending; ``query`` is the last turn as typed, ``start`` when the request began."""
        if plan.route != "multihop":
            return plan
        assert plan.fallback is not None
        walked = self.walk(plan.question or query, plan, start or time.perf_counter())
        return walked if walked is not None else plan.fallback

    def chat(self, messages: Sequence[Message]) -> Answer:
        """Answer the last user message of a conversation (walking multi-hop questions
        over the edits when a :class:`GraphWalker` is set)."""
        start = time.perf_counter()
        native = self.backend.chat_native
        try:
            settled = self.settle(
                self.plan_chat(messages, native=native), messages[-1]["content"], start
            )
            if isinstance(settled, Answer):
                return settled
            return self._run(settled, start, chat=True)
        except ContextOverflowError:
            if self.demos is None:
                raise
            plan = self.plan_chat(messages, native=native, with_demos=False)
            return self._run(plan, start, chat=True)

    def ask(self, question: str) -> Answer:
        """Answer one question (a one-turn chat)."""
        return self.chat([{"role": "user", "content": question}])

    # ---- adding edits -----------------------------------------------------------------------

    def check(self, edit: Edit, paraphrases: Sequence[str] = ()) -> EditCheck:
        """Ask the edit's own cloze and each paraphrase (a question when it ends with "?")
        through the editor; each passes when the answer states the new object."""
        if not edit.structured or edit.target_new is None:
            return EditCheck(edit)
        probes = []
        for text in (edit.cloze(), *paraphrases):
            answer = self.ask(text) if text.rstrip().endswith("?") else self.complete(text)
            probes.append((text, answer.text, contains_answer(answer.text, edit.target_new)))
        return EditCheck(edit, tuple(probes))

    def add_edit(self, edit: Edit, paraphrases: Sequence[str] = ()) -> EditCheck:
        """Store ``edit``; under the ``fallback`` policy, check the in-context route on it
        and write it into the weights when any probe fails."""
        stored = self.memory.add(edit)
        if self.params.weights_policy != "fallback" or self.weights is None:
            return EditCheck(stored)
        result = self.check(stored, paraphrases)
        if result.passed or not stored.structured:
            return result
        self.weights.write([stored])
        return EditCheck(stored, result.probes, written=True)

    async def aask(self, question: str) -> Answer:
        return await asyncio.to_thread(self.ask, question)
