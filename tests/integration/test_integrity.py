"""Nothing lost, nothing crosses tenants: ids per namespace, copies across namespaces,
old stores re-keyed, crash points between two writes, and a store of any size opening.

Real Chroma throughout (embedded, and the ``chroma run`` server where it matters)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import chromadb
import httpx
import pytest
from chromadb.config import Settings as ChromaSettings

from kme_rag.errors import EditConflictError
from kme_rag.memory.edit import Edit, parse_edit
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory, record_key
from kme_rag.server import create_app
from kme_rag.settings import Settings

from ..hashing import HashEmbedder
from .conftest import free_port
from .proxy_helpers import running
from .test_cli import kme
from .test_server import ADMIN, bearer, proxy_settings

ROOT = Path(__file__).resolve().parents[2]
CRASHER = Path(__file__).with_name("crasher.py")


def japan(new: str, **fields: str) -> Edit:
    return Edit(subject="Japan", relation="capital", target_new=new, **fields)


# ---- ids never collide across owners ------------------------------------------------------


def test_cross_namespace_import_through_the_cli_copies(tmp_path: Path) -> None:
    store, exported = tmp_path / "store", tmp_path / "a.jsonl"
    args = ("--subject", "Japan", "--relation", "capital", "--new", "Kyoto")
    original = kme(store, "--namespace", "a", "edit", "add", *args).stdout.strip()
    kme(store, "--namespace", "a", "edit", "export", str(exported))
    said = kme(store, "--namespace", "b", "edit", "import", str(exported)).stdout
    assert "1 copied from another namespace" in said

    in_a = json.loads(kme(store, "--namespace", "a", "edit", "list", "--json").stdout)
    in_b = json.loads(kme(store, "--namespace", "b", "edit", "list", "--json").stdout)
    assert [e["id"] for e in in_a] == [original]  # the source keeps its edit
    assert len(in_b) == 1 and in_b[0]["id"] != original
    assert in_b[0]["origin"] == f"a/{original}" and in_b[0]["target_new"] == "Kyoto"

    assert "undid add" in kme(store, "--namespace", "b", "edit", "undo").stdout
    assert json.loads(kme(store, "--namespace", "b", "edit", "list", "--json").stdout) == []
    in_a = json.loads(kme(store, "--namespace", "a", "edit", "list", "--json").stdout)
    assert [e["id"] for e in in_a] == [original]  # b's undo cannot reach a's record


def test_an_id_is_per_namespace_and_never_overwritten(memory: EditMemory) -> None:
    other = memory.with_namespace("other")
    mine = memory.add(japan("Kyoto", id="shared-id"))
    theirs = other.add(japan("Osaka", id="shared-id"))  # the same id elsewhere: its own record
    assert memory.get("shared-id").target_new == "Kyoto"
    assert other.get("shared-id").target_new == "Osaka"
    with pytest.raises(EditConflictError, match="already taken"):
        memory.add(japan("Nara", id="shared-id"))
    with pytest.raises(EditConflictError):  # a batch with one taken id writes nothing
        memory.add_many(
            [japan("Nara"), Edit(subject="X", relation="r", target_new="y", id="shared-id")]
        )
    assert [e.id for e in memory.edits(status=None)] == [mine.id]
    assert [e.id for e in other.edits(status=None)] == [theirs.id]

    memory.delete("shared-id")
    with pytest.raises(EditConflictError):  # deleted ids stay taken: history is kept
        memory.add(japan("Nara", id="shared-id"))
    assert other.undo().removed == ("shared-id",)
    assert memory.get("shared-id").status == "deleted"


def test_restore_into_the_same_namespace_skips_what_is_there_and_refuses_clashes(
    memory: EditMemory, tmp_path: Path
) -> None:
    memory.add(japan("Kyoto"))
    memory.add(japan("Osaka"))
    path = tmp_path / "backup.jsonl"
    memory.export(path)
    assert memory.import_file(path) == []  # everything already there: a re-run is a no-op
    assert len(memory.edits(status=None)) == 2

    lines = path.read_text().splitlines()
    changed = json.loads(lines[0]) | {"target_new": "Sapporo"}
    path.write_text(json.dumps(changed) + "\n")
    with pytest.raises(EditConflictError, match="nothing was imported"):
        memory.import_file(path)
    assert {e.target_new for e in memory.edits(status=None)} == {"Kyoto", "Osaka"}


def test_post_with_another_tenants_id_leaves_that_tenant_alone(
    tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    settings = proxy_settings(tmp_path, f"http://127.0.0.1:{free_port()}/v1")
    app = create_app(settings, embedder=embedder)
    edit = {"subject": "Japan", "relation": "capital", "target_new": "Kyoto"}
    with running(app) as url, httpx.Client(base_url=url, headers=bearer(ADMIN)) as client:
        a = client.post("/edits", json=edit, headers={"x-kme-namespace": "a"})
        assert a.status_code == 200, a.text
        victim = a.json()["id"]
        attack = edit | {"id": victim, "target_new": "Pwned"}
        b = client.post("/edits", json=attack, headers={"x-kme-namespace": "b"})
        assert b.status_code == 200 and b.json()["id"] == victim
        again = client.post("/edits", json=attack, headers={"x-kme-namespace": "a"})
        assert again.status_code == 409 and again.json()["error"]["type"] == "conflict_error"
        assert client.post("/edits/undo", headers={"x-kme-namespace": "b"}).status_code == 200
        kept = client.get(f"/edits/{victim}", headers={"x-kme-namespace": "a"}).json()
        assert kept["target_new"] == "Kyoto" and kept["status"] == "active"
        spec = client.get(url.removesuffix("/v1") + "/openapi.json").json()
        post = spec["paths"]["/v1/edits"]["post"]
        assert "409" in post["responses"] and "never overwritten" in post["description"]


# ---- old stores ---------------------------------------------------------------------------


def test_a_schema_1_store_opens_with_every_edit(tmp_path: Path) -> None:
    """Records keyed by edit id alone (how stores were written before ids were scoped
    per namespace) are re-keyed on open; none is lost, history and undo still work."""
    embedder = HashEmbedder()
    client = chromadb.PersistentClient(
        path=str(tmp_path / "old"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.create_collection(
        "kme_edits", embedding_function=None, metadata={"hnsw:space": "cosine"}
    )
    kyoto = japan("Kyoto", namespace="a", change_id="00000000000000000001-aaaaaaaa")
    osaka = japan(
        "Osaka", namespace="a", change_id="00000000000000000002-aaaaaaaa", supersedes=kyoto.id
    )
    kyoto = kyoto.model_copy(update={"status": "superseded"})
    other = Edit(subject="Kenya", relation="capital", target_new="Mombasa", namespace="b")
    old = [kyoto, osaka, other]
    metadatas = [
        {
            k: v
            for k, v in {**e.to_metadata(), "key": "\t".join(e.key or ())}.items()
            if v is not None
        }
        for e in old
    ]
    metadatas = [
        {k: v for k, v in m.items() if k not in ("superseded_change_id", "origin")}
        for m in metadatas
    ]
    for m in metadatas:  # schema 1 wrote timestamps with a "Z"
        m["created_at"] = str(m["created_at"]).replace("+00:00", "Z")
    collection.add(
        ids=[e.id for e in old],
        metadatas=metadatas,  # type: ignore[arg-type]
        documents=[e.statement for e in old],
        embeddings=embedder.embed([e.statement for e in old]),
    )

    a = EditMemory(client, embedder=embedder, namespace="a")
    assert [e.id for e in a.edits(status=None)] == [kyoto.id, osaka.id]
    assert sorted(collection.get(include=[])["ids"]) == sorted(
        [record_key("a", kyoto.id), record_key("a", osaka.id), record_key("b", other.id)]
    )
    assert a.graph.lookup("Japan", "capital") == a.get(osaka.id)
    assert a.undo().restored == (kyoto.id,)  # the schema-1 supersede link still undoes
    assert a.graph.lookup("Japan", "capital").target_new == "Kyoto"  # type: ignore[union-attr]
    b = EditMemory(client, embedder=embedder, namespace="b")
    assert [e.target_new for e in b.edits()] == ["Mombasa"]


# ---- crash points -------------------------------------------------------------------------


def crash(settings: Settings, point: str, *args: str) -> list[str]:
    """Run the crasher until it kills itself; what it acknowledged."""
    env = {**os.environ, "KME_COLLECTION": settings.collection, "KME_STORE": str(settings.store)}
    env.pop("KME_CHROMA_URL", None)
    if settings.chroma_url:
        env["KME_CHROMA_URL"] = settings.chroma_url
    done = subprocess.run(
        [sys.executable, str(CRASHER), point, *args],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert done.returncode == -9, (done.returncode, done.stdout, done.stderr)
    assert "survived" not in done.stdout
    return [line.split()[1] for line in done.stdout.splitlines() if line.startswith("acked")]


def check_one_active(memory: EditMemory, new: str) -> None:
    active = memory.edits(subject="Japan", relation="capital")
    assert [e.target_new for e in active] == [new]
    assert [e.id for e in memory.graph.edits()] == [active[0].id]


@pytest.mark.parametrize("point", ["supersede", "undo"])
def test_sigkill_between_two_writes_is_repaired_on_open(settings: Settings, point: str) -> None:
    acked = crash(settings, point)
    memory = EditMemory.open(settings, embedder=HashEmbedder())
    everything = {e.id: e for e in memory.edits(status=None)}
    assert set(acked) <= set(everything)  # nothing acknowledged is lost
    # supersede: Osaka was written, so the change completes; undo: the undo did not
    # happen (Osaka still stored), so the state before it stands. Either way, Osaka.
    check_one_active(memory, "Osaka")
    kyoto = everything[acked[0]]
    assert kyoto.status == "superseded"
    assert kyoto.superseded_change_id == memory.edits()[0].change_id
    assert memory.undo().restored == (kyoto.id,)  # and undo still works after the repair
    check_one_active(memory, "Kyoto")


def test_sigkill_between_two_writes_is_repaired_by_a_running_process(
    settings: Settings,
) -> None:
    """A server that was open before the crash repairs on its refresh (the full id
    comparison, since the dead writer never moved the stamp)."""
    memory = EditMemory.open(settings, embedder=HashEmbedder())
    crash(settings, "supersede")
    assert memory.sync(full=True)
    check_one_active(memory, "Osaka")
    fresh = EditMemory.open(settings, embedder=HashEmbedder())
    check_one_active(fresh, "Osaka")


def test_an_import_killed_midway_is_finished_by_running_it_again(
    settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    records = json.loads((data_dir / "counterfact" / "counterfact-train.json").read_text())
    path = tmp_path / "part.json"
    path.write_text(json.dumps(records[:600]))
    assert crash(settings, "import", str(path)) == ["256"]  # one batch, then SIGKILL
    memory = EditMemory.open(settings, embedder=HashEmbedder())
    assert len(memory.edits(status=None)) == 256

    written = memory.import_file(path)
    everything = memory.edits(status=None)
    assert len(written) == 600 - 256
    assert len(everything) == len({e.id for e in everything}) == 600  # none twice
    assert len({e.change_id for e in everything}) == 1  # one change, as if never cut
    assert {e.id for e in memory.graph.edits()} == {e.id for e in memory.edits()}
    assert memory.import_file(path) == []  # a finished import re-run writes nothing
    assert len(memory.undo().removed) == 600 and memory.edits(status=None) == []


# ---- size ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_store_of_100000_edits_opens_exports_and_undoes(tmp_path: Path) -> None:
    """Past SQLite's ~32,000 variables, which one unpaged ``get`` of every record hits."""
    settings = Settings(store=tmp_path / "store", collection="big")
    memory = EditMemory.open(settings, embedder=HashEmbedder())
    edits = [
        parse_edit({"subject": f"Entity {i}", "relation": "r", "target_new": f"o{i}"})
        for i in range(100_000)
    ]
    start = time.perf_counter()
    memory.add_many(edits)
    added = time.perf_counter() - start
    memory.add(Edit(subject="Entity 7", relation="r", target_new="seven"))

    start = time.perf_counter()
    reopened = EditMemory.open(settings, embedder=HashEmbedder())
    opened = time.perf_counter() - start
    assert len(reopened) == 100_000 and len(reopened.graph) == 100_000
    assert reopened.graph.lookup("Entity 7", "r").target_new == "seven"  # type: ignore[union-attr]

    path = tmp_path / "all.jsonl"
    assert reopened.export(path) == 100_001
    lines = path.read_text().splitlines()
    assert len({json.loads(line)["id"] for line in lines}) == 100_001
    reopened.undo()  # the single add: Entity 7 back to o7
    assert reopened.graph.lookup("Entity 7", "r").target_new == "o7"  # type: ignore[union-attr]
    start = time.perf_counter()
    result = reopened.undo()  # the 100,000-edit change
    undone = time.perf_counter() - start
    assert len(result.removed) == 100_000 and len(reopened) == 0 and len(reopened.graph) == 0
    assert len(EditMemory.open(settings, embedder=HashEmbedder())) == 0
    print(f"100k edits: add {added:.0f} s, open {opened:.1f} s, undo {undone:.0f} s")


def test_an_edit_undone_by_another_process_is_not_used_before_the_sync(
    settings: Settings,
) -> None:
    """The graph of a process that has not synced yet still names the undone edit;
    retrieval checks Chroma and drops it instead of failing."""
    a = EditMemory.open(settings, embedder=HashEmbedder())
    b = EditMemory.open(settings, embedder=HashEmbedder())
    edit = a.add(Edit(subject="Zorblat Tower", relation="city", target_new="Rome"))
    b.sync()
    assert edit.id in {h.edit.id for h in b.candidates("Where is the Zorblat Tower?")}
    a.undo()
    assert edit.id not in {h.edit.id for h in b.candidates("Where is the Zorblat Tower?")}
    a.add(Edit(subject="Zorblat Tower", relation="city", target_new="Oslo"))
    a.delete(a.edits()[0].id)
    assert b.candidates("Where is the Zorblat Tower?") == [] or all(
        h.edit.status == "active" for h in b.candidates("Where is the Zorblat Tower?")
    )
