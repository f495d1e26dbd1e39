from __future__ import annotations

from kme_rag.memory.edit import new_change_id, parse_edit
from kme_rag.memory.graph import FactGraph


def edit(subject: str, relation: str, target: str, **extra: object):  # type: ignore[no-untyped-def]
    return parse_edit({"subject": subject, "relation": relation, "target_new": target, **extra})


def test_lookup_through_aliases_and_normalisation() -> None:
    graph = FactGraph([edit("Eiffel Tower", "city", "Rome", subject_aliases=["Tour Eiffel"])])
    assert graph.lookup("tour eiffel", "City").target_new == "Rome"  # type: ignore[union-attr]
    assert graph.lookup("The Eiffel Tower", "city") is not None
    assert graph.lookup("Eiffel Tower", "country") is None
    assert graph.lookup("Big Ben", "city") is None


def test_newer_edit_of_same_key_replaces_older() -> None:
    old = edit("Japan", "capital", "Kyoto")
    new = edit("Japan", "capital", "Osaka", change_id=new_change_id())
    graph = FactGraph([new, old])  # order of arrival does not matter: change ids do
    assert graph.lookup("Japan", "capital") == new
    assert len(graph) == 1 and old.id not in graph


def test_inactive_and_unstructured_edits_are_not_facts() -> None:
    graph = FactGraph(
        [edit("A", "r", "B", status="deleted"), parse_edit({"statement": "Free text."})]
    )
    assert len(graph) == 0


def test_facts_paths_and_remove() -> None:
    tower = edit("Eiffel Tower", "city", "Rome")
    rome = edit("Rome", "country", "Italy", subject_aliases=["Roma"])
    italy = edit("Italy", "continent", "Europe")
    graph = FactGraph([tower, rome, italy])
    assert graph.facts("Eiffel Tower") == [tower]
    assert next(graph.paths("Eiffel Tower", "Europe")) == [tower, rome, italy]
    assert graph.resolve("roma") == graph.resolve("Rome")
    graph.remove(rome.id)
    assert list(graph.paths("Eiffel Tower", "Europe")) == []
    assert rome.id not in graph and len(graph) == 2
