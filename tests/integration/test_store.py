"""The edit memory on real Chroma, run against both the embedded and the server client."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kme_rag.errors import EditNotFoundError, NothingToUndoError, ValidationError
from kme_rag.memory.edit import Edit, parse_edit
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings


def fact(subject: str, relation: str, target: str, **extra: object) -> Edit:
    return parse_edit({"subject": subject, "relation": relation, "target_new": target, **extra})


def graph_matches_chroma(memory: EditMemory) -> bool:
    active = {e.id for e in memory.edits() if e.structured}
    return {e.id for e in memory.graph.edits()} == active


def test_add_get_and_search_finds_the_relevant_edit(memory: EditMemory) -> None:
    tower = memory.add(fact("Eiffel Tower", "{} is located in the city of", "Rome"))
    memory.add(fact("Japan", "capital", "Kyoto"))
    memory.add(parse_edit({"statement": "The Louvre moved to Lyon in 2026."}))
    assert memory.get(tower.id) == tower
    hits = memory.search("Where is the Eiffel Tower?", k=3)
    assert hits[0].edit.id == tower.id
    assert hits[0].score > hits[1].score
    top = memory.search("Which museum is in Lyon now?", k=1)[0]
    assert top.edit.statement == "The Louvre moved to Lyon in 2026."


def test_reediting_supersedes_and_history_keeps_both(memory: EditMemory) -> None:
    first = memory.add(fact("Japan", "capital", "Kyoto"))
    second = memory.add(fact("japan", "Capital", "Osaka"))
    assert second.supersedes == first.id
    assert memory.get(first.id).status == "superseded"
    assert memory.graph.lookup("Japan", "capital") == second
    assert [e.target_new for e in memory.history("Japan", "capital")] == ["Kyoto", "Osaka"]
    assert [e.id for e in memory.edits()] == [second.id]
    assert all(hit.edit.id != first.id for hit in memory.search("capital of Japan", k=5))


def test_delete_and_undo_restore_the_previous_state(memory: EditMemory) -> None:
    kyoto = memory.add(fact("Japan", "capital", "Kyoto"))
    osaka = memory.add(fact("Japan", "capital", "Osaka"))
    memory.delete(osaka.id)
    assert memory.graph.lookup("Japan", "capital") is None
    assert memory.get(osaka.id).status == "deleted"

    assert memory.undo().kind == "delete"  # the delete comes back
    assert memory.graph.lookup("Japan", "capital") == memory.get(osaka.id)
    result = memory.undo()  # the Osaka add goes, Kyoto is active again
    assert result.removed == (osaka.id,) and result.restored == (kyoto.id,)
    assert memory.graph.lookup("Japan", "capital") == memory.get(kyoto.id)
    with pytest.raises(EditNotFoundError):
        memory.get(osaka.id)
    memory.undo()
    assert len(memory) == 0
    with pytest.raises(NothingToUndoError):
        memory.undo()


def test_batch_add_is_one_change(memory: EditMemory) -> None:
    memory.add(fact("A", "r", "B"))
    batch = memory.add_many([fact(f"S{i}", "r", f"O{i}") for i in range(10)])
    assert len({e.change_id for e in batch}) == 1
    assert len(memory) == 11
    memory.undo()
    assert [e.subject for e in memory.edits()] == ["A"]
    assert graph_matches_chroma(memory)


def test_list_filters(memory: EditMemory) -> None:
    memory.add(fact("Japan", "capital", "Kyoto"))
    memory.add(fact("Japan", "currency", "Euro"))
    memory.add(fact("France", "capital", "Lyon"))
    assert {e.target_new for e in memory.edits(subject="japan")} == {"Kyoto", "Euro"}
    assert {e.subject for e in memory.edits(relation="capital")} == {"Japan", "France"}
    assert memory.edits(status="deleted") == []


def test_unknown_ids_and_empty_queries_are_clear_errors(memory: EditMemory) -> None:
    with pytest.raises(EditNotFoundError, match="e_missing"):
        memory.get("e_missing")
    with pytest.raises(EditNotFoundError):
        memory.delete("e_missing")
    with pytest.raises(ValidationError):
        memory.search("   ")
    assert memory.search("anything") == []  # empty store: nothing retrieved, no error


def test_namespaces_never_leak(memory: EditMemory) -> None:
    other = memory.with_namespace("tenant-b")
    mine = memory.add(fact("Japan", "capital", "Kyoto"))
    theirs = other.add(fact("Japan", "capital", "Osaka"))
    assert theirs.supersedes is None  # a different tenant's key
    assert [e.id for e in memory.edits()] == [mine.id]
    assert [h.edit.id for h in other.search("capital of Japan", k=5)] == [theirs.id]
    with pytest.raises(EditNotFoundError):
        other.get(mine.id)
    other.undo()
    assert [e.id for e in memory.edits()] == [mine.id]


def test_export_import_round_trip_is_lossless(
    memory: EditMemory, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    memory.add(fact("Japan", "capital", "Kyoto", subject_aliases=["Yamato"]))
    memory.add(fact("Japan", "capital", "Osaka"))
    gone = memory.add(parse_edit({"statement": "Free text about Lyon."}))
    memory.delete(gone.id)
    path = tmp_path / "edits.jsonl"
    assert memory.export(path) == 3

    fresh = EditMemory.open(
        Settings(store=tmp_path / "fresh", collection="fresh_store"), embedder=embedder
    )
    fresh.import_file(path)
    assert fresh.edits(status=None) == memory.edits(status=None)
    assert fresh.graph.lookup("Yamato", "capital") is None  # the Kyoto edit is superseded
    current = fresh.graph.lookup("Nippon", "capital")  # a known alias of Japan
    assert current is not None and current.target_new == "Osaka"
    assert fresh.graph.lookup("Japan", "capital") == memory.graph.lookup("Japan", "capital")
    fresh.undo()  # the restored history undoes like the original: the delete comes back
    assert fresh.get(gone.id).status == "active"


def test_reopening_rebuilds_the_graph(settings: Settings, embedder: MiniLMEmbedder) -> None:
    memory = EditMemory.open(settings, embedder=embedder)
    memory.add_many([fact(f"Subject {i}", "r", f"Object {i}") for i in range(50)])
    again = EditMemory.open(settings, embedder=embedder)
    assert len(again.graph) == 50 and graph_matches_chroma(again)
    assert again.graph.lookup("subject 7", "R").target_new == "Object 7"  # type: ignore[union-attr]


def test_concurrent_adds_from_eight_threads_all_land(memory: EditMemory) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(10):
            edit = memory.add(fact(f"Thread {n} item {i}", "r", "x"))
            with lock:
                ids.append(edit.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 80
    assert {e.id for e in memory.edits()} == set(ids)
    assert graph_matches_chroma(memory)


def test_import_of_shared_data_files(memory: EditMemory, data_dir: Path) -> None:
    cf = memory.import_file(data_dir / "counterfact" / "counterfact-edit.json", limit=20)
    zsre = memory.import_file(data_dir / "zsre" / "zsre_mend_train-1k.json", "zsre", limit=5)
    mq = memory.import_file(data_dir / "mquake" / "MQuAKE-CF-3k-subset354.json", limit=3)
    assert len(cf) == 20 and len(zsre) == 5 and len(mq) >= 3
    hit = memory.search("The mother tongue of Danielle Darrieux is", k=1)[0]
    assert hit.edit.target_new == "English"
    assert graph_matches_chroma(memory)


def test_search_sees_only_active_edits_of_its_namespace_when_others_crowd_it(
    memory: EditMemory,
) -> None:
    """Other tenants' near-identical edits fill the unfiltered neighbours: still correct."""
    crowd = memory.with_namespace("crowd")
    crowd.add_many([fact("Eiffel Tower", f"{{}} is in district {i} of", "Rome") for i in range(60)])
    mine = memory.add(fact("Eiffel Tower", "{} is located in the city of", "Rome"))
    superseded = memory.add(fact("Big Ben", "city", "Paris"))
    memory.add(fact("Big Ben", "city", "Madrid"))
    hits = memory.search("The Eiffel Tower is located in the city of Rome.", k=3)
    assert [h.edit.namespace for h in hits] == ["default"] * 2
    assert hits[0].edit.id == mine.id
    assert superseded.id not in {h.edit.id for h in hits}


def test_a_text_becomes_its_facts_reconciled_with_what_is_stored(memory: EditMemory) -> None:
    old = memory.add(fact("Brightloop", "chief executive officer", "Ann Lee"))
    same = memory.add(fact("Kenya", "capital", "Mombasa"))
    text = (
        "Kenya's capital is Mombasa. Dana Kim is the new CEO of Brightloop, and the "
        "company moved its headquarters to Denver in May. Shares rose 4% on the news."
    )
    added = memory.add_text(text, source="notes")
    assert added.understood and added.restated == (same,)  # a restatement writes nothing
    facts = [e for e in added.stored if e.structured]
    kept = [e for e in added.stored if not e.structured]
    assert {(e.subject, e.relation, e.target_new) for e in facts} == {
        ("Brightloop", "chief executive officer", "Dana Kim"),
        ("Brightloop", "headquarters", "Denver"),
    }
    assert [e.statement for e in kept] == ["Shares rose 4% on the news."]  # not dropped
    assert all(e.derived_from == text and e.source == "notes" for e in added.stored)
    assert added.superseded == (old.id,) and memory.get(old.id).status == "superseded"
    ceo = next(e for e in facts if e.relation == "chief executive officer")
    history = memory.history("Brightloop", "chief executive officer")
    assert [e.id for e in history] == [old.id, ceo.id]
    assert graph_matches_chroma(memory)
    undone = memory.undo()  # the text's records are one change: undone together
    assert set(undone.removed) == {e.id for e in added.stored}
    assert memory.get(old.id).status == "active"


def test_a_text_nothing_is_understood_in_stays_a_statement(memory: EditMemory) -> None:
    added = memory.add_text("Remember to be kind to the interns.")
    assert not added.understood and len(added.stored) == 1
    assert not added.stored[0].structured
    assert added.stored[0].statement == "Remember to be kind to the interns."
