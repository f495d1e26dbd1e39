"""The graph snapshot: a store opens from it without a rebuild, catches up on what was
written since, and never trusts a snapshot that is not its own (both store kinds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kme_rag.memory.edit import Edit
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory, open_chroma, snapshot_folder
from kme_rag.settings import Settings


def fact(subject: str, relation: str, target: str) -> Edit:
    return Edit(subject=subject, relation=relation, target_new=target)


def batch(n: int, relation: str = "capital") -> list[Edit]:
    return [fact(f"Country {i}", relation, f"City {i}") for i in range(n)]


def open_memory(
    settings: Settings,
    embedder: MiniLMEmbedder,
    namespace: str | None = None,
    *,
    saves: bool = True,
) -> EditMemory:
    """As ``EditMemory.open``, saving a snapshot from 20 active edits (or never)."""
    return EditMemory(
        open_chroma(settings),
        embedder=embedder,
        namespace=namespace or settings.namespace,
        collection=settings.collection,
        snapshots=snapshot_folder(settings) if saves else None,
        snapshot_min=20,
    )


def facts(memory: EditMemory) -> dict[str, tuple[str | None, str | None]]:
    return {e.id: (e.subject, e.target_new) for e in memory.graph.edits()}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The conftest's store, with a cache of its own (a server's snapshots live there)."""
    return settings.model_copy(update={"cache_dir": tmp_path / "cache"})


def refuse_rebuilds(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: EditMemory) -> None:
        raise AssertionError("the graph was rebuilt from every record")

    monkeypatch.setattr(EditMemory, "_rebuild", refuse)


def test_a_large_write_saves_the_graph_and_an_open_loads_it(
    settings: Settings, embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = open_memory(settings, embedder)
    writer.add_many(batch(25))
    files = list(snapshot_folder(settings).glob("*.graph"))
    assert len(files) == 1
    refuse_rebuilds(monkeypatch)
    opened = open_memory(settings, embedder)
    assert facts(opened) == facts(writer)
    assert opened.graph.lookup("country 3", "Capital").target_new == "City 3"  # type: ignore[union-attr]
    assert "Country 7" in {e.subject for e in opened.graph.mentioned("Where is country 7?")}


def test_an_open_catches_up_on_writes_after_the_snapshot(
    settings: Settings, embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kme_rag.memory.store.MARGIN_US", 0)  # found by written_us alone
    writer = open_memory(settings, embedder)
    stored = writer.add_many(batch(25))
    other = open_memory(settings, embedder)  # a second process (small writes save nothing)
    other.add(fact("Country 1", "capital", "New City"))  # supersedes
    other.delete(stored[2].id)
    other.add(fact("Lonely Island", "continent", "Oceania"))

    with monkeypatch.context() as patched:
        refuse_rebuilds(patched)
        opened = open_memory(settings, embedder)
    truth = open_memory(settings, embedder, saves=False)  # rebuilt from every record
    assert facts(opened) == facts(truth) == facts(other)
    assert opened.graph.lookup("Country 1", "capital").target_new == "New City"  # type: ignore[union-attr]
    assert stored[2].id not in opened.graph
    assert writer.sync() and facts(writer) == facts(truth)  # a sync reads the same way


def test_an_undo_elsewhere_is_seen_through_the_ids(
    settings: Settings, embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records an undo removes leave nothing to read by time: the removal stamp sends
    the open and the sync to the comparison of ids."""
    monkeypatch.setattr("kme_rag.memory.store.MARGIN_US", 0)
    writer = open_memory(settings, embedder)
    writer.add_many(batch(25))
    other = open_memory(settings, embedder)
    added = other.add(fact("Lonely Island", "continent", "Oceania"))
    assert writer.sync() and added.id in writer.graph
    other.undo()
    assert writer.sync() and added.id not in writer.graph
    opened = open_memory(settings, embedder)
    assert added.id not in opened.graph and facts(opened) == facts(writer)


def test_a_snapshot_that_is_not_its_own_is_rebuilt(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    writer = open_memory(settings, embedder)
    writer.add_many(batch(25))
    (path,) = snapshot_folder(settings).glob("*.graph")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # cut short
    assert facts(open_memory(settings, embedder)) == facts(writer)  # rebuilt (and saved)
    path.write_bytes(whole.replace(b'"format": 1', b'"format": 0'))  # another format
    assert facts(open_memory(settings, embedder)) == facts(writer)
    assert b'"format": 1' in path.read_bytes()

    # The collection dropped and made again under its name: the old graph is not its own.
    saved = path.read_bytes()
    client = writer._client
    client.delete_collection(settings.collection)
    fresh = open_memory(settings, embedder)
    path.write_bytes(saved)
    assert len(open_memory(settings, embedder).graph) == len(fresh.graph) == 0


def test_each_namespace_has_its_own_snapshot(settings: Settings, embedder: MiniLMEmbedder) -> None:
    a = open_memory(settings, embedder, "a")
    a.add_many(batch(25))
    b = a.with_namespace("b")
    b.add_many(batch(30, relation="anthem"))
    assert len(list(snapshot_folder(settings).glob("*.graph"))) == 2
    assert len(open_memory(settings, embedder, "a").graph) == 25
    assert len(open_memory(settings, embedder, "b").graph) == 30


def test_a_namespace_named_schema_keeps_the_store_openable(
    settings: Settings, embedder: MiniLMEmbedder
) -> None:
    """Until 2026-12 the schema version was stamped under "schema", which the change stamp
    of a namespace of that name overwrote: the next open failed on int()."""
    memory = EditMemory.open(settings, embedder=embedder, namespace="schema")
    memory.add(fact("Rome", "country", "Spain"))
    memory._stamps.write("schema", "00000000000000000001-abcdef01")  # as the old stamp did
    again = EditMemory.open(settings, embedder=embedder, namespace="schema")
    assert len(again.graph) == 1
    assert len(EditMemory.open(settings, embedder=embedder).graph) == 0


def test_snapshots_live_beside_the_store_or_in_the_cache(tmp_path: Path) -> None:
    embedded = Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache")
    assert snapshot_folder(embedded) == tmp_path / "store" / "kme-graphs"
    served = embedded.model_copy(update={"chroma_url": "http://10.0.0.5:8000"})
    folder = snapshot_folder(served)
    assert folder.parent == tmp_path / "cache" / "graphs"
    other = snapshot_folder(served.model_copy(update={"chroma_url": "http://10.0.0.6:8000"}))
    assert folder != other
