"""The scope decision: which retrieved edits a query actually touches.

Pure functions and one :class:`ScopeModel` protocol. The editor retrieves candidate
edits by similarity, then asks a scope model which of them the query is about; a query
with none in scope goes to the backend untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kme_rag.memory.aliases import subject_names
from kme_rag.memory.edit import Edit
from kme_rag.memory.mention import find_mention
from kme_rag.memory.store import SearchHit
from kme_rag.scope.extract import statement_names

__all__ = ["ScopeDecision", "ScopeModel", "mentions_subject", "names_what_it_states"]


def mentions_subject(query: str, edit: Edit) -> bool:
    """Whether the query names the edit's subject (or one of its aliases) as whole words
    (:func:`~kme_rag.memory.mention.find_mention`, the matcher retrieval and the trained
    classifier use). ``"Where is the Eiffel Tower?"`` mentions subject ``"Eiffel Tower"``;
    ``"Where is the Eiffel Towers Inn?"`` does not. Unstructured edits have no subject:
    they never match here and are scoped by similarity alone.
    """
    if edit.subject is None:
        return False
    return find_mention(query, subject_names(edit)).exact


def names_what_it_states(query: str, edit: Edit) -> bool:
    """For an unstructured edit (a statement no fact was read from): whether the query
    names one of the names the statement speaks of (:func:`statement_names`), so that a
    question about another subject never gets it however close its wording. A statement
    that names nothing ("Be kind to the interns.") has nothing to gate on: True."""
    names = statement_names(edit.statement)
    return not names or find_mention(query, names).exact


@dataclass(frozen=True)
class ScopeDecision:
    """The edits a query is in scope of, best first, and the score of each candidate."""

    in_scope: tuple[Edit, ...]
    scores: tuple[float, ...]

    @property
    def any(self) -> bool:
        return bool(self.in_scope)


@runtime_checkable
class ScopeModel(Protocol):
    """Decides, for one query and its retrieved candidates, which edits apply."""

    @property
    def name(self) -> str: ...

    def decide(self, query: str, candidates: Sequence[SearchHit]) -> ScopeDecision: ...
