"""Graph-guided multi-hop answering: link the subject, infer the chain, walk it.

1. **Link**: the question's subject is the longest name it mentions of an entity in the
   fact graph (edits) or the known-facts graph, else the longest quoted or capitalised
   span (kept as its surface string).
2. **Chain**: :func:`~kme_rag.multihop.relations.infer_chain` on the question with the
   subject masked; an edit of the subject makes its relation the likeliest first hop.
3. **Walk**: for each relation, the hop question ("What is the country of citizenship of
   Ellie Kemper?") goes to the scope step first: an active edit in scope of it answers
   the hop with its new object (the graph's fact); else a trusted known fact of the same
   subject and relation answers it (known-facts mode, labelled); else the model answers
   the single hop after a few answered examples of the relation.
4. **Answer**: the last hop's answer, with the trace of every hop.

A question with no linkable subject or no chain above ``min_score`` falls back to MeLLo
(loose loop) when a fallback is configured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from kme_rag.backends import Backend
from kme_rag.memory.aliases import subject_names
from kme_rag.memory.edit import Edit
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.mention import find_mention
from kme_rag.memory.store import EditMemory
from kme_rag.multihop.hops import RelationPrompts, ask_hop
from kme_rag.multihop.mello import load_prompt, mello_answerer
from kme_rag.multihop.relations import (
    Chain,
    Relation,
    RelationBank,
    composition_cache,
    infer_chain,
)
from kme_rag.scope.base import ScopeModel
from kme_rag.scope.classifier import TrainedScope
from kme_rag.settings import Settings

__all__ = [
    "GraphWalker",
    "Hop",
    "MultihopAnswer",
    "WalkParams",
    "build_walker",
    "link_subject",
    "looks_composed",
    "mask",
]

Source = Literal["edit", "known", "model"]
_QUOTED = re.compile(r"[\"“]([^\"”]{2,80})[\"”]")
_WORD = re.compile(r"[\w][\w.'\u2019&-]*")
_JOINERS = {"of", "the", "de", "du", "da", "del", "der", "van", "von", "and", "la", "le", "&"}
# How a question nests one relation inside another, in words. An *inner* noun phrase that
# is itself a relation: a noun with a relative clause or a participle ("the city where X
# stands", "the person who founded X", "the sport played by X"), a relation of a relation
# ("the capital of the country of citizenship of X"), or a possessive ("X's founder",
# "X's founder's birthplace"). A relative clause or possessive composes only under an
# outer relation: after a bare "What is" / "Who is the name of" it *is* the question ("What
# is the sport that X plays?", "Who is X's spouse?"). Set on MQuAKE-CF-slice300 cases 0-39
# (recall) and single-relation training questions (false triggers):
# benchmarks/experiments/composition_cue.py.
_W = r"[a-z][\w/-]*"
_INNER = re.compile(  # a lookahead, so that every article is tried as a start
    rf"(?=\b(?:the|a|an)\s+(?:{_W}\s+){{0,3}}?{_W}\s+(?:"
    r"(?:where|in which|at which|that|who|whom|whose|which)\s"
    r"|(?:associated|related|connected|linked|played|founded|created|developed|written|"
    r"produced|performed|made|owned|led|directed|composed|designed|built|invented|"
    r"mentioned|attributed|used|spoken|sung|operated|manufactured|broadcast|published)"
    r"\s+(?:with|to|by|in|at|on|from)\s))",
    re.IGNORECASE,
)
_LOWER = r"[a-z][a-z/-]*"  # case-sensitive: "the author of The Heroes of Olympus" is a title
_NESTED = re.compile(
    rf"\b[Tt]he\s+(?!(?:name|location|title|date|head|current head)\s+of\b)"
    rf"{_LOWER}(?:\s+{_LOWER}){{0,2}}?\s+of\s+the\s+{_LOWER}(?:\s+{_LOWER}){{0,2}}?"
    r"\s+(?:of|in|for|from|by)\s"
)
_POSSESSIVE = re.compile(r"[\w.\"\u201d)]['\u2019]s?\s+(?!s\b)[a-z]")
_TWO_POSSESSIVES = re.compile(r"\w['\u2019]s\s+\w+['\u2019]s\s")
_NAME_BEFORE = re.compile(  # the capitalised name that ends where a possessive begins
    r"(?:[\"\u201c]?[A-Z0-9][\w.&'\u2019-]*\s+(?:(?:of|the|de|and|&|von|van|la|le)\s+)*)*"
    r"[\"\u201c]?[A-Z0-9][\w.&'\u2019-]*[\"\u201d]?$"
)
_BARE = re.compile(  # a question's head that asks for the inner phrase itself
    r"^\s*(?:(?:what|who|which|where|when)(?:\s+(?:is|was|are|were|'s))?"
    r"|(?:can you\s+)?name|tell me)?\s*(?:(?:the\s+)?name\s+of\s*)?$",
    re.IGNORECASE,
)
_NAME_OF = re.compile(r"\bthe\s+(?:name|title)\s+of\s*$", re.IGNORECASE)


def looks_composed(question: str) -> bool:
    """Whether ``question`` is worded as a composition of relations (regular expressions:
    microseconds, so every question can be checked). A cue, not a decision: the walk
    still needs a chain of two hops that its relations explain. On the tuning questions
    (see ``_INNER``): 79% of MQuAKE's compositions, 0.9% of single-relation questions."""
    if _TWO_POSSESSIVES.search(question) or _NESTED.search(question):
        return True
    if any(not _BARE.match(question[: m.start()]) for m in _INNER.finditer(question)):
        return True
    for match in _POSSESSIVE.finditer(question):
        name = _NAME_BEFORE.search(question[: match.start() + 1])
        if name is None:
            continue
        head = question[: name.start()]
        if not _BARE.match(head) and not _NAME_OF.search(head):
            return True
    return False


@dataclass(frozen=True)
class Hop:
    """One walked hop: the single-hop question, its answer and where the answer came
    from (edit ids joined by "+", a known fact's id, or ``"model"``)."""

    question: str
    relation_id: str
    subject: str
    answer: str
    source: Source
    edit_id: str | None = None

    @property
    def origin(self) -> str:
        return self.edit_id if self.edit_id is not None else "model"


@dataclass(frozen=True)
class MultihopAnswer:
    """The walk's answer (None when nothing could be answered) and its trace."""

    text: str | None
    method: Literal["graph", "mello", "none"]
    subject: str | None = None
    chain: tuple[str, ...] = ()
    chain_score: float = 0.0
    hops: tuple[Hop, ...] = ()
    single_score: float | None = None  # the best single relation's score

    def composed(self, margin: float) -> bool:
        """Whether the question composes relations: the chain has two hops or more and
        explains the question better than any single relation by ``margin``."""
        if len(self.chain) < 2:
            return False
        return self.single_score is None or self.chain_score - self.single_score >= margin

    @property
    def edits_used(self) -> list[str]:
        """Ids of the edits the hops were answered from (a hop may chain two)."""
        hops = [h.edit_id for h in self.hops if h.source == "edit" and h.edit_id]
        return [i for ids in hops for i in ids.split("+")]


@dataclass(frozen=True)
class WalkParams:
    max_hops: int = 4
    beam: int = 6
    min_score: float = 0.55  # below: the question is not a chain of the bank's relations
    shots: int = 4  # answered examples before a single-hop question to the model
    max_tokens: int = 12
    # How much better than any single relation a chain must explain a question for the
    # editor to walk it: 0.08 lets ~1% of single-hop training questions (zsRE 0-499,
    # MQuAKE's training scope pairs) through (benchmarks/experiments/
    # composition_margin.py, 2026-12-03); 95 of the 120 questions of MQuAKE-CF-slice300
    # cases 0-39 (the walk's tuning cases) pass it.
    composition_margin: float = 0.08


def _capitalised_spans(question: str) -> list[str]:
    """Runs of capitalised words (joined by "of", "the", "de", ...), the question's first
    word excluded (it is capitalised because it starts the sentence)."""
    words = list(_WORD.finditer(question))
    spans: list[str] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        while run and run[-1].group().lower() in _JOINERS:
            run.pop()
        if run:
            spans.append(question[run[0].start() : run[-1].end()])
        run.clear()

    for i, word in enumerate(words):
        text = word.group()
        named = i > 0 and any(c.isupper() or c.isdigit() for c in text)
        if named or (run and text.lower() in _JOINERS):
            run.append(word)
        else:
            close()
    close()
    return [re.sub(r"['\u2019]s?$", "", s) for s in spans]


def link_subject(question: str, graphs: Sequence[FactGraph]) -> str | None:
    """The question's subject: the longest entity name (or alias) of the graphs that it
    names as whole words (unless a capitalised span runs on past it: a longer name),
    else the longest quoted or capitalised span, else None."""
    names: list[str] = []
    for graph in graphs:
        for edit in graph.mentioned(question):
            assert edit.subject is not None
            for name in subject_names(edit):
                if find_mention(question, (name,)).exact:
                    names.append(name)
    spans = [m.group(1).strip().rstrip(",.;") for m in _QUOTED.finditer(question)]
    spans += _capitalised_spans(question)
    if names:
        name = max(names, key=len)
        # "judo" inside "European Judo Championships" is part of a longer name
        longer = [s for s in spans if _continues(s, name)]
        return max(longer, key=len) if longer else name
    return max(spans, key=len) if spans else None


def _continues(span: str, name: str) -> bool:
    """Whether ``span`` holds ``name`` followed by more of itself (a longer name)."""
    index = span.lower().find(name.lower())
    return index >= 0 and span[index + len(name) :].strip() != ""


def mask(question: str, subject: str) -> str:
    """The question with its subject replaced by "X" (first occurrence, any case)."""
    index = question.lower().find(subject.lower())
    if index < 0:
        return question
    return f"{question[:index]}X{question[index + len(subject) :]}"


_RUN_ON = re.compile(r"\s(?:[A-D][:.)]|Q:|A:)\s?|\?")


def clean_answer(text: str) -> str:
    """A single-hop answer as an entity name: first line, cut where the model runs on
    into options or a new question ("Vienna B: Graz", "Austria? A"), no trailing
    punctuation."""
    line = text.strip().split("\n")[0]
    line = _RUN_ON.split(line, maxsplit=1)[0]
    return line.strip().rstrip(".,;:").strip().strip('"').strip()


@dataclass
class GraphWalker:
    """Answers multi-hop questions by walking relation chains over the edits."""

    backend: Backend
    memory: EditMemory
    bank: RelationBank
    prompts: RelationPrompts
    scope: ScopeModel
    known: FactGraph | None = None  # trusted unedited facts (labelled mode)
    params: WalkParams = field(default_factory=WalkParams)
    fallback: Callable[[str], str | None] | None = None  # MeLLo, when set

    def graphs(self) -> list[FactGraph]:
        return [self.memory.graph] + ([self.known] if self.known is not None else [])

    def _exact(self, subject: str, relation: Relation) -> Edit | None:
        """The subject's active edit of exactly this relation (by the bank's mapping)."""
        for edit in self.memory.graph.facts(subject):
            if self.bank.relation_of(edit) == relation.id:
                return edit
        return None

    def _edit_hop(self, question: str, relation: Relation, subject: str) -> tuple[Edit, ...]:
        """The active edits that answer this hop, as a path: the subject's edit of the
        same relation; else the one the scope step puts the hop question in scope of —
        and when that edit states *another* relation whose object has an edit of this
        one, both ("Which country is the Eiffel Tower in?" with Eiffel Tower → Rome
        (city) and Rome → Italy (country) in the graph answers Italy)."""
        exact = self._exact(subject, relation)
        if exact is not None:
            return (exact,)
        facts = self.memory.graph.facts(subject)
        if not facts:
            return ()
        decision = self.scope.decide(question, self.memory.candidates(question))
        named = {e.id for e in facts}
        edit = next((e for e in decision.in_scope if e.id in named), None)
        if edit is None:
            return ()
        if edit.target_new and self.bank.relation_of(edit) != relation.id:
            onward = self._exact(edit.target_new, relation)
            if onward is not None:
                return (edit, onward)
        return (edit,)

    def _known_hop(self, relation: Relation, subject: str) -> Edit | None:
        """The subject's trusted fact of this relation (mapped like an edit's)."""
        if self.known is None:
            return None
        return next(
            (f for f in self.known.facts(subject) if self.bank.relation_of(f) == relation.id),
            None,
        )

    def hop(self, relation: Relation, subject: str, *, ask_model: bool = True) -> Hop | None:
        """Answer one hop: an edit, then a known fact, then the model (None instead of
        the model's answer when ``ask_model`` is False)."""
        if relation.id in self.prompts.questions:
            question = self.prompts.question(relation.id, subject)
        else:
            question = relation.ask(subject)
        path = self._edit_hop(question, relation, subject)
        if path and path[-1].target_new:
            ids = "+".join(e.id for e in path)
            return Hop(question, relation.id, subject, path[-1].target_new, "edit", ids)
        fact = self._known_hop(relation, subject)
        if fact is not None and fact.target_new:
            return Hop(question, relation.id, subject, fact.target_new, "known", fact.id)
        if not ask_model:
            return None
        text = ask_hop(
            self.backend,
            self.prompts,
            relation.id,
            question,
            max_tokens=self.params.max_tokens,
            k=self.params.shots,
        )
        return Hop(question, relation.id, subject, clean_answer(text), "model")

    def chains(self, question: str, *, deep: bool = True) -> tuple[str | None, list[Chain]]:
        """The linked subject and the candidate chains, best first. Not ``deep``: chains
        of three hops or more only when two hops beat one by the composition margin."""
        subject = link_subject(question, self.graphs())
        if subject is None:
            return None, []
        facts = self.memory.graph.facts(subject)
        self.bank.add_edits(facts)  # edits stored since the bank was built
        anchors = {r for r in map(self.bank.relation_of, facts) if r is not None}
        found = infer_chain(
            self.bank,
            mask(question, subject),
            subject=subject,
            max_hops=self.params.max_hops,
            beam=self.params.beam,
            anchors=anchors,
            deepen_margin=None if deep else self.params.composition_margin,
        )
        return subject, found

    def walk(self, subject: str, chain: Chain, edited: set[str] | None = None) -> list[Hop]:
        """The chain's hops from ``subject``. With ``edited`` (the relations stored edits
        state), the walk stops before asking the model a hop when no hop so far came
        from an edit and no later relation of the chain is edited: its answer could come
        from no edit, and such an answer is never used, so the model calls are saved."""
        hops: list[Hop] = []
        entity = subject
        relations = chain.relations
        for i, relation in enumerate(relations):
            later = edited is None or any(h.source == "edit" for h in hops)
            later = later or any(r.id in (edited or ()) for r in relations[i + 1 :])
            step = self.hop(relation, entity, ask_model=later)
            if step is None:
                break
            hops.append(step)
            if not step.answer:
                break
            entity = step.answer
        return hops

    def edited_relations(self) -> set[str]:
        """The bank relations the stored edits state."""
        self.bank.add_edits(self.memory.graph.edits())
        return {r for e in self.memory.graph.edits() if (r := self.bank.relation_of(e))}

    def answer(
        self,
        question: str,
        *,
        fallback: bool = True,
        composed_only: bool = False,
        through_edits: bool = False,
        worded: bool = False,
        edits_only: bool = False,
    ) -> MultihopAnswer:
        """Link, infer, walk; MeLLo (when set and ``fallback``) when the question is not
        a chain of known relations. With ``composed_only``, a question whose best chain
        is not a composition (:meth:`MultihopAnswer.composed`) is not walked; with
        ``through_edits``, nor one whose chain has no relation any stored edit states
        (its hops would all be the model's: nothing to change, so no model call).
        ``worded``: the question is worded as a composition (:func:`looks_composed`), so
        its best chain of two hops or more is the one walked, however the single
        relations score (an edit of the subject lifts its own relation's score).
        ``edits_only``: the caller uses the answer only when a hop came from an edit (the
        editor), so the walk stops where none can (:meth:`walk`)."""
        subject, found = self.chains(question, deep=worded or not composed_only)
        if subject is None or not found or found[0].score < self.params.min_score:
            if self.fallback is not None and fallback:
                return MultihopAnswer(self.fallback(question), "mello", subject)
            return MultihopAnswer(None, "none", subject)
        single = max((c.score for c in found if len(c.relations) == 1), default=None)
        if worded:
            found = [c for c in found if len(c.relations) >= 2]
            if not found or found[0].score < self.params.min_score:
                return MultihopAnswer(None, "none", subject, (), 0.0, (), single)
        best = found[0]
        planned = MultihopAnswer(None, "none", subject, best.ids, best.score, (), single)
        if composed_only and not worded and not planned.composed(self.params.composition_margin):
            return planned  # a single-relation question: not walked
        edited = self.edited_relations()
        if through_edits and not set(best.ids) & edited:
            return planned
        hops = self.walk(subject, best, edited if edits_only else None)
        text = hops[-1].answer if hops and len(hops) == len(best.relations) else None
        return MultihopAnswer(text, "graph", subject, best.ids, best.score, tuple(hops), single)


def build_walker(
    settings: Settings,
    backend: Backend,
    memory: EditMemory,
    known: FactGraph | None = None,
    params: WalkParams | None = None,
) -> GraphWalker:
    """The graph walk over ``memory``'s edits: relations from MQuAKE's template files
    (shipped in the package; no data folder is read) plus the stored edits' templates,
    the trained scope, and MeLLo (loose) as the fallback.
    ``known`` defaults to the facts of ``settings.known_namespace`` when that is set."""
    bank = RelationBank.from_mquake(None, memory.embedder)
    if (identity := getattr(memory.embedder, "identity", None)) is not None:
        bank.cache_file = composition_cache(settings.cache_dir, identity)
    bank.add_edits(memory.graph.edits())
    if known is None and settings.known_namespace:
        namespace = settings.known_namespace
        known = EditMemory.open(settings, embedder=memory.embedder, namespace=namespace).graph
    mello = mello_answerer(backend, memory, load_prompt())

    def fallback(question: str) -> str | None:
        return mello(question)[0]

    return GraphWalker(
        backend,
        memory,
        bank,
        RelationPrompts.load(),
        TrainedScope(memory.embedder),
        known=known,
        params=params or WalkParams(),
        fallback=fallback,
    )
