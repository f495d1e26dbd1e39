"""The fact graph: a networkx view of the active structured edits of one namespace.

Entities are nodes keyed by their normalised name (:func:`normalise_name`), carrying the
display name and every alias seen; each active edit is one edge subject → new object,
keyed by the edit id. The graph is *derived*: built from the store, updated on every
write, and saved only as a snapshot that an open catches up from the records written
since (:mod:`kme_rag.memory.snapshot`), so it cannot disagree with Chroma.

Every method takes the graph's own lock, so a planner may read it while a sync or a
write changes it, without a lock of its own held across model calls.
"""

from __future__ import annotations

import functools
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import networkx as nx

from kme_rag.memory.aliases import subject_names, target_names
from kme_rag.memory.edit import Edit, normalise_name
from kme_rag.memory.mention import (
    STOP_WORDS,
    is_acronym,
    name_tokens,
    possessive_stems,
    token_spans,
    typed_as_acronym,
)

__all__ = ["FactGraph"]

F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    @functools.wraps(method)
    def run(self: FactGraph, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


class FactGraph:
    """Entities and the edited facts between them, with alias-aware lookup."""

    def __init__(self, edits: Iterable[Edit] = ()) -> None:
        self.graph: nx.MultiDiGraph = nx.MultiDiGraph()
        self._alias: dict[str, str] = {}  # normalised alias -> node key
        self._by_key: dict[tuple[str, str], Edit] = {}  # (subject node, relation) -> edit
        self._key_of: dict[str, tuple[str, str]] = {}  # edit id -> its (node, relation)
        self._by_tokens: dict[tuple[str, ...], set[str]] = {}  # name's word tokens -> nodes
        self._codes: set[tuple[str, ...]] = set()  # tokens only codes ("UK") have: see mention
        self._words: set[tuple[str, ...]] = set()  # tokens some other name has
        self._longest = 0  # the most word tokens any name has
        self._lock = threading.RLock()
        for edit in sorted(edits, key=lambda e: e.change_id):
            self.add(edit)

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the lock (a snapshot is this state, pickled)."""
        with self._lock:
            return {k: v for k, v in vars(self).items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._lock = threading.RLock()

    @_locked
    def __len__(self) -> int:
        """The number of facts (edges)."""
        return int(self.graph.number_of_edges())

    @_locked
    def __contains__(self, edit_id: object) -> bool:
        return edit_id in self._key_of

    @_locked
    def edits(self) -> list[Edit]:
        return list(self._by_key.values())

    @_locked
    def resolve(self, name: str) -> str | None:
        """The node key an entity name or alias refers to, or None."""
        return self._alias.get(normalise_name(name))

    def _node(self, name: str, aliases: Iterable[str]) -> str:
        key = self._alias.get(normalise_name(name)) or normalise_name(name)
        if key not in self.graph:
            self.graph.add_node(key, name=name, aliases=set())
        names = self.graph.nodes[key]["aliases"]
        for alias in (name, *aliases):
            names.add(alias)
            self._alias.setdefault(normalise_name(alias), key)
            tokens = tuple(name_tokens(alias))
            if any(t not in STOP_WORDS for t in tokens):
                self._by_tokens.setdefault(tokens, set()).add(key)
                self._longest = max(self._longest, len(tokens))
                (self._codes if is_acronym(alias) else self._words).add(tokens)
        return key

    @_locked
    def add(self, edit: Edit) -> None:
        """Add an active structured edit; it replaces any older fact with the same key."""
        if not edit.structured or edit.status != "active":
            return
        assert edit.subject and edit.relation and edit.target_new
        src = self._node(edit.subject, subject_names(edit)[1:])
        dst = self._node(edit.target_new, target_names(edit)[1:])
        relation = normalise_name(edit.relation)
        old = self._by_key.get((src, relation))
        if old is not None:
            if old.change_id > edit.change_id:
                return  # a newer fact already holds this key
            self.remove(old.id)
        self.graph.add_edge(src, dst, key=edit.id, relation=edit.relation, edit=edit)
        self._by_key[(src, relation)] = edit
        self._key_of[edit.id] = (src, relation)

    @_locked
    def remove(self, edit_id: str) -> None:
        """Drop the fact an edit contributed (no-op when it is not in the graph)."""
        key = self._key_of.pop(edit_id, None)
        if key is None:
            return
        del self._by_key[key]
        for u, v, k in list(self.graph.out_edges(key[0], keys=True)):
            if k == edit_id:
                self.graph.remove_edge(u, v, key=k)

    @_locked
    def lookup(self, subject: str, relation: str) -> Edit | None:
        """The active edit for (subject, relation), matching names through aliases."""
        node = self.resolve(subject)
        if node is None:
            return None
        return self._by_key.get((node, normalise_name(relation)))

    @_locked
    def facts(self, entity: str) -> list[Edit]:
        """Every active edited fact whose subject is ``entity`` (or one of its aliases)."""
        node = self.resolve(entity)
        if node is None:
            return []
        return [data["edit"] for _, _, data in self.graph.out_edges(node, data=True)]

    @_locked
    def mentioned(self, text: str) -> list[Edit]:
        """Every active edited fact whose subject ``text`` names (by name or alias, as
        whole words; a code only where it is typed as one): "Where is the Eiffel Tower?"
        → the Eiffel Tower's facts."""
        norm = unicodedata.normalize("NFKC", text)
        spans = token_spans(norm)
        tokens = [token for token, _, _ in spans]
        stems = possessive_stems(norm, spans)  # "merkels" also names Merkel
        nodes: set[str] = set()
        for n in range(1, min(self._longest, len(tokens)) + 1):
            for i in range(len(tokens) - n + 1):
                words = tuple(tokens[i : i + n])
                if words in self._codes and words not in self._words:
                    if typed_as_acronym(norm, spans, i, n):
                        nodes |= self._by_tokens[words]
                    continue
                nodes |= self._by_tokens.get(words, set())
                if stems[i + n - 1] != tokens[i + n - 1]:
                    possessive = (*tokens[i : i + n - 1], stems[i + n - 1])
                    nodes |= self._by_tokens.get(possessive, set())
        return [
            data["edit"]
            for node in sorted(nodes)
            for _, _, data in self.graph.out_edges(node, data=True)
        ]

    def paths(self, source: str, target: str, max_hops: int = 4) -> Iterator[list[Edit]]:
        """Chains of edited facts leading from ``source`` to ``target``, shortest first."""
        return iter(self._paths(source, target, max_hops))

    @_locked
    def _paths(self, source: str, target: str, max_hops: int) -> list[list[Edit]]:
        src, dst = self.resolve(source), self.resolve(target)
        if src is None or dst is None:
            return []
        found = nx.all_simple_edge_paths(self.graph, src, dst, cutoff=max_hops)
        return [
            [self.graph.edges[u, v, k]["edit"] for u, v, k in path]
            for path in sorted(found, key=len)
        ]
