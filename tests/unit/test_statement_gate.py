"""The subject gate of statements no fact was read from (:func:`names_what_it_states`)."""

from __future__ import annotations

from kme_rag.memory.edit import Edit
from kme_rag.scope.base import names_what_it_states
from kme_rag.scope.extract import statement_names


def test_a_statement_speaks_of_its_names_not_of_its_opening_word() -> None:
    assert statement_names("The Louvre moved to Lyon in 2026.") == ("Louvre", "Lyon")
    assert statement_names("Shares in Brightloop rose 4%.") == ("Brightloop",)
    assert statement_names("Remember to be kind to the interns.") == ()


def test_only_a_question_naming_what_it_states_gets_a_statement() -> None:
    edit = Edit(statement="Team update: Brightloop's office moved to a barn near Porto.")
    assert names_what_it_states("Where is Brightloop's office now?", edit)
    assert names_what_it_states("where is brightloop's office", edit)  # typed in a hurry
    assert not names_what_it_states("Where is Acme's office now?", edit)
    nameless = Edit(statement="Remember to be kind to the interns.")
    assert names_what_it_states("How should I treat the interns?", nameless)  # nothing to gate
