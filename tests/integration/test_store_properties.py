"""A stateful property test of the edit memory on real Chroma, against a plain-dict oracle.

Hypothesis drives random sequences of adds, deletes, undos, exports, imports and restores
through :class:`EditMemory` (three namespaces sharing one client and collection) and,
after every step, compares what Chroma holds with :class:`Model`, written here from the
store's contract (``kme_rag/memory/store.py``'s docstring) and nothing else:

1. each namespace's records are exactly the model's (ids, statuses, change ids, links);
2. at most one active edit per (subject, relation) key per namespace;
3. the fact graph of every memory (long-lived, its peer after ``sync``, a freshly opened
   one) holds exactly the active structured edits. The long-lived memories save graph
   snapshots after every write and the peers never do, so a fresh open loads a snapshot
   and catches up on the peers' writes since (with no margin: every record must be found
   by its ``written_us``), or compares ids after an undo;
4. history is never rewritten: while a record exists its content and change id stay;
5. nothing crosses namespaces: a step on one leaves the others' records as they were.

Edit ids come from a small pool and subjects/relations from small pools (with spelling
variants that normalise to one key), so id conflicts and supersedes are frequent. The
embedder is a hash of the text: it is an injected dependency, not the store under test.
The run is derandomised and reads no example database, so CI replays the same sequences.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kme_rag.errors import (
    EditConflictError,
    EditNotFoundError,
    NothingToUndoError,
    ValidationError,
)
from kme_rag.memory.edit import Edit, parse_edit
from kme_rag.memory.store import EditMemory, UndoResult

NAMESPACES = ("a", "b", "c")
EDIT_IDS = ("e1", "e2", "e3", "e4", "e5", "e6")
# Display names and the key each normalises to, written out here rather than computed
# with the store's normalise_name, so the oracle stays independent of it.
SUBJECT_KEYS = {"Japan": "japan", "the Japan": "japan", "France": "france", "Peru": "peru"}
RELATION_KEYS = {"capital": "capital", "Capital": "capital", "anthem": "anthem"}
TARGETS = ("Kyoto", "Osaka", "Lima", "Paris")
MUTABLE = ("status", "supersedes", "deleted_change_id", "superseded_change_id")
HISTORY = ("subject", "relation", "target_new", "statement", "change_id", "created_at")
Record = dict[str, Any]  # an edit as Edit.model_dump(mode="json") writes it

RUNS: dict[str, Counter[str]] = {}  # variant -> counts, filled as the machines run


def key_of(record: Record) -> tuple[str, str] | None:
    if record.get("subject") is None:
        return None
    return SUBJECT_KEYS[record["subject"]], RELATION_KEYS[record["relation"]]


def content(record: Record, namespace: str) -> Record:
    """What makes two records one edit: every field but the mutable ones, in ``namespace``."""
    fields = {k: v for k, v in record.items() if k not in MUTABLE}
    return {**fields, "namespace": namespace}


def dump(edit: Edit) -> Record:
    return edit.model_dump(mode="json")


class HashEmbedder:
    """Deterministic unit vectors from a hash of the text (dim 16, float32)."""

    dim = 16

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)  # (texts, dim)
        for row, text in enumerate(texts):
            digest = hashlib.sha256(text.encode()).digest()[: self.dim]
            vector = np.frombuffer(digest, dtype=np.uint8).astype(np.float32) - 127.5
            out[row] = vector / np.linalg.norm(vector)
        return out


# ---- the oracle ----------------------------------------------------------------------------


class Model:
    """Every namespace's records as the contract says they must be: id -> record."""

    def __init__(self) -> None:
        self.spaces: dict[str, dict[str, Record]] = {ns: {} for ns in NAMESPACES}
        self.ambiguous = 0  # ties the contract leaves open (none expected)
        self.repairs = 0  # edits an undo revived beside a newer one, demoted again

    def records(self, ns: str) -> dict[str, Record]:
        return self.spaces[ns]

    def active_structured(self, ns: str) -> set[str]:
        return {i for i, r in self.spaces[ns].items() if r["status"] == "active" and key_of(r)}

    def changes(self, ns: str) -> set[str]:
        recs = self.spaces[ns].values()
        return {r["change_id"] for r in recs} | {
            r["deleted_change_id"] for r in recs if r["deleted_change_id"]
        }

    @staticmethod
    def demote(record: Record, by_change: str) -> None:
        record["status"] = "superseded"
        record["superseded_change_id"] = by_change

    def resolve(self, ns: str, incoming: list[str], link: bool) -> None:
        """Newest change wins per key, between incoming edits of one change the later; the
        displaced holder is demoted by the change that displaced it."""
        recs = self.spaces[ns]
        inc = set(incoming)
        keys = {key_of(recs[i]) for i in incoming if recs[i]["status"] == "active"} - {None}
        before: dict[tuple[str, str], Record] = {}
        stored = [r for i, r in recs.items() if i not in inc and r["status"] == "active"]
        for rec in sorted(stored, key=lambda r: r["change_id"]):
            k = key_of(rec)
            if k is not None and k in keys:
                assert k not in before, f"two active edits of {k} before a write"
                before[k] = rec
        holder = dict(before)
        for rec in sorted((recs[i] for i in incoming), key=lambda r: r["change_id"]):
            k = key_of(rec)
            if k is None or rec["status"] != "active":
                continue
            current = holder.get(k)
            if current is not None and current["change_id"] > rec["change_id"]:
                self.demote(rec, current["change_id"])
                continue
            if current is not None:
                if link and rec["supersedes"] is None:
                    rec["supersedes"] = current["id"]
                if current["id"] in inc:
                    self.demote(current, rec["change_id"])
            holder[k] = rec
        for k, old in before.items():
            if holder[k] is not old:
                self.demote(old, holder[k]["change_id"])

    def repair(self, ns: str, keys: set[tuple[str, str]]) -> None:
        """Of several active edits of one key the newest change keeps it."""
        for k in keys:
            active = [
                r for r in self.spaces[ns].values() if r["status"] == "active" and key_of(r) == k
            ]
            active.sort(key=lambda r: r["change_id"])
            if len(active) > 1 and active[-1]["change_id"] == active[-2]["change_id"]:
                self.ambiguous += 1
            for rec in active[:-1]:
                self.demote(rec, active[-1]["change_id"])
                self.repairs += 1

    def add(self, ns: str, new: list[Record], change: str) -> None:
        for rec in new:
            fields = {"namespace": ns, "change_id": change, "status": "active"}
            links = {"supersedes": None, "deleted_change_id": None, "superseded_change_id": None}
            self.spaces[ns][rec["id"]] = {**rec, **fields, **links}
        self.resolve(ns, [r["id"] for r in new], link=True)

    def delete(self, ns: str, edit_id: str, change: str) -> None:
        self.spaces[ns][edit_id].update(status="deleted", deleted_change_id=change)

    def undo(self, ns: str) -> tuple[str, str, set[str], set[str]]:
        """(change, kind, removed, restored) of undoing the newest change of ``ns``."""
        recs = self.spaces[ns]
        change = max(self.changes(ns))
        back = [i for i, r in recs.items() if r["deleted_change_id"] == change]
        if back:
            for i in back:
                recs[i].update(status="active", deleted_change_id=None)
            self.resolve(ns, back, link=False)
            return change, "delete", set(), set(back)
        removed = {i for i, r in recs.items() if r["change_id"] == change}
        revived = {
            i
            for i, r in recs.items()
            if i not in removed
            and r["status"] == "superseded"
            and r["superseded_change_id"] == change
        }
        for i in removed:
            del recs[i]
        for i in revived:
            recs[i].update(status="active", superseded_change_id=None)
        self.repair(ns, {k for i in revived if (k := key_of(recs[i]))})
        return change, "add", removed, revived

    def restore_error(
        self, ns: str, own: list[Record], copied: list[Record]
    ) -> type[Exception] | None:
        """What restoring these records must raise: one id twice (among this namespace's
        records, or among those to copy), or an id taken here by other content."""
        for group in (own, copied):
            ids = [r["id"] for r in group]
            if len(set(ids)) != len(ids):
                return ValidationError
        recs = self.spaces[ns]
        clash = [r for r in own if r["id"] in recs and content(r, ns) != content(recs[r["id"]], ns)]
        return EditConflictError if clash else None

    def restore_own(self, ns: str, own: list[Record]) -> list[str]:
        fresh = [{**r, "namespace": ns} for r in own if r["id"] not in self.spaces[ns]]
        for rec in fresh:
            self.spaces[ns][rec["id"]] = dict(rec)
        self.resolve(ns, [r["id"] for r in fresh], link=False)
        return [r["id"] for r in fresh]

    def copy(self, ns: str, sources: list[Record], new_ids: list[str], change: str) -> None:
        ids = {s["id"]: new for s, new in zip(sources, new_ids, strict=True)}
        for src, new in zip(sources, new_ids, strict=True):
            self.spaces[ns][new] = {
                **src,
                "id": new,
                "namespace": ns,
                "origin": src["origin"] or f"{src['namespace']}/{src['id']}",
                "change_id": change,
                "supersedes": ids.get(src["supersedes"]) if src["supersedes"] else None,
                "deleted_change_id": None,
                "superseded_change_id": change if src["status"] == "superseded" else None,
            }
        self.resolve(ns, new_ids, link=True)


# ---- the machine ---------------------------------------------------------------------------


@dataclass
class Context:
    """What every example of one variant shares: the client and where files go."""

    variant: str
    client: Any
    files: Path
    embedder: HashEmbedder = field(default_factory=HashEmbedder)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Spec:
    """One edit a rule asks for: id (None: the store's), subject (None: statement only)."""

    id: str | None
    subject: str | None
    relation: str
    target: str

    def edit(self) -> Edit:
        fields: dict[str, Any] = {"id": self.id} if self.id else {}
        if self.subject is None:
            return parse_edit({**fields, "statement": f"A note about {self.target}."})
        triple = {"subject": self.subject, "relation": self.relation, "target_new": self.target}
        return parse_edit({**fields, **triple})


@dataclass(frozen=True)
class Export:
    namespace: str
    path: Path
    records: tuple[Record, ...]


def specs(fresh: int) -> st.SearchStrategy[Spec]:
    """Edits to add: ``fresh`` in ``fresh + 6`` leave the id to the store."""
    return st.builds(
        Spec,
        id=st.sampled_from((None,) * fresh + EDIT_IDS),
        subject=st.sampled_from((*SUBJECT_KEYS, None)),
        relation=st.sampled_from(tuple(RELATION_KEYS)),
        target=st.sampled_from(TARGETS),
    )


SPECS = specs(3)  # one single add in three is fresh: pool ids collide often
BATCH_SPECS = specs(12)  # a batch holding any taken id is refused whole: mostly fresh
SPACES = st.sampled_from(NAMESPACES)


class StoreMachine(RuleBasedStateMachine):
    """EditMemory on real Chroma, step by step against :class:`Model`."""

    exports = Bundle("exports")

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx
        ctx.counts["sequences"] += 1
        self.collection = f"props_{ctx.variant}_{uuid.uuid4().hex[:12]}"
        self.model = Model()
        self.memories = {ns: self._open(ns) for ns in NAMESPACES}
        self.peers = {ns: self._open(ns, saves=False) for ns in NAMESPACES}  # another process
        self.raw = ctx.client.get_collection(self.collection)
        self.seen: dict[str, dict[str, Record]] = {ns: {} for ns in NAMESPACES}
        self.before: dict[str, dict[str, Record]] = {ns: {} for ns in NAMESPACES}
        self.touched: set[str] = set()
        self.wrote = False
        self.writer: EditMemory | None = None
        self.steps = 0
        self.reopened = 0  # the step of the last reopen
        self.unexported: set[str] = set()  # namespaces written since their last export
        self.newest = ""  # the newest change id the store has handed out

    def _open(self, ns: str, *, saves: bool = True) -> EditMemory:
        return EditMemory(
            self.ctx.client,
            embedder=self.ctx.embedder,
            namespace=ns,
            collection=self.collection,
            snapshots=self.ctx.files / "graphs" if saves else None,
            snapshot_min=0,  # saved after every write and every open that changed it
        )

    def _memory(self, ns: str, via_peer: bool) -> EditMemory:
        """The long-lived memory of ``ns`` (or its peer) this step writes through."""
        self.writer = self.peers[ns] if via_peer else self.memories[ns]
        return self.writer

    def _count(self, name: str, outcome: str = "ok") -> None:
        self.ctx.counts["ops"] += 1
        self.ctx.counts[f"{name}:{outcome}"] += 1

    def _new_change(self, change: str) -> None:
        assert change > self.newest, f"change {change} is not newer than {self.newest}"
        self.newest = change

    def _refused(self, name: str, errors: Any, call: Callable[[], object]) -> None:
        """``call`` must raise one of ``errors``; the invariants then check nothing changed."""
        with pytest.raises(errors):
            call()
        self._count(name, "refused")

    def _step(self, *namespaces: str, wrote: bool) -> None:
        self.touched = set(namespaces)
        self.wrote = wrote
        if wrote:
            self.unexported |= self.touched

    # ---- rules --------------------------------------------------------------------------

    @rule(ns=SPACES, spec=SPECS, via_peer=st.booleans())
    def add(self, ns: str, spec: Spec, via_peer: bool) -> None:
        memory = self._memory(ns, via_peer)
        edit = spec.edit()
        self._step(ns, wrote=False)
        if spec.id in self.model.records(ns):
            self._refused("add", EditConflictError, lambda: memory.add(edit))
            return
        stored = memory.add(edit)
        self._added(ns, [edit], [stored])
        self._count("add")

    @rule(ns=SPACES, specs=st.lists(BATCH_SPECS, min_size=1, max_size=3), via_peer=st.booleans())
    def add_many(self, ns: str, specs: list[Spec], via_peer: bool) -> None:
        memory = self._memory(ns, via_peer)
        edits = [s.edit() for s in specs]
        self._step(ns, wrote=False)
        chosen = [s.id for s in specs if s.id]
        taken = any(i in self.model.records(ns) for i in chosen)
        twice = len(set(chosen)) != len(chosen)
        if taken or twice:
            # Both refusals write nothing; the contract does not say which one wins.
            errors = (EditConflictError,) * taken + (ValidationError,) * twice
            self._refused("add_many", errors, lambda: memory.add_many(edits))
            return
        stored = memory.add_many(edits)
        self._added(ns, edits, stored)
        self._count("add_many")

    def _added(self, ns: str, edits: list[Edit], stored: list[Edit]) -> None:
        assert [e.id for e in stored] == [e.id for e in edits]
        changes = {e.change_id for e in stored}
        assert len(changes) == 1, f"one add_many is one change, got {changes}"
        change = changes.pop()
        self._new_change(change)
        self.model.add(ns, [dump(e) for e in edits], change)
        assert [dump(e) for e in stored] == [self.model.records(ns)[e.id] for e in edits]
        self._step(ns, wrote=True)

    @rule(ns=SPACES, pick=st.integers(0, 7), via_peer=st.booleans())
    def delete(self, ns: str, pick: int, via_peer: bool) -> None:
        """Delete a stored edit (maybe one already deleted), or now and then a pool id."""
        memory = self._memory(ns, via_peer)
        stored = list(self.model.records(ns))  # in the order written: the same every run
        edit_id = stored[pick % len(stored)] if pick and stored else EDIT_IDS[pick % 6]
        self._step(ns, wrote=False)
        record = self.model.records(ns).get(edit_id)
        if record is None or record["status"] == "deleted":
            self._refused("delete", EditNotFoundError, lambda: memory.delete(edit_id))
            return
        gone = memory.delete(edit_id)
        assert gone.deleted_change_id is not None
        self._new_change(gone.deleted_change_id)
        self.model.delete(ns, edit_id, gone.deleted_change_id)
        assert dump(gone) == record
        self._step(ns, wrote=True)
        self._count("delete")

    @rule(ns=SPACES, via_peer=st.booleans())
    def undo(self, ns: str, via_peer: bool) -> None:
        memory = self._memory(ns, via_peer)
        self._step(ns, wrote=False)
        if not self.model.records(ns):
            self._refused("undo", NothingToUndoError, memory.undo)
            return
        result: UndoResult = memory.undo()
        change, kind, removed, restored = self.model.undo(ns)
        got = (result.change_id, result.kind, set(result.removed), set(result.restored))
        assert got == (change, kind, removed, restored)
        self._step(ns, wrote=True)
        self._count("undo", kind)

    @precondition(lambda self: self.unexported)
    @rule(target=exports, pick=st.integers(0, 2))
    def export(self, pick: int) -> Export:
        """Export a namespace written since its last export (others add nothing new)."""
        ns = sorted(self.unexported)[pick % len(self.unexported)]
        self.unexported.discard(ns)
        path = self.ctx.files / f"{self.collection}-{uuid.uuid4().hex[:8]}.jsonl"
        self._step(wrote=False)
        count = self.memories[ns].export(path)
        lines = path.read_text(encoding="utf-8").splitlines()
        records = tuple(json.loads(line) for line in lines)
        assert count == len(records)
        changes = [r["change_id"] for r in records]
        assert changes == sorted(changes), "an export lists edits oldest first"
        assert {r["id"]: r for r in records} == self.model.records(ns)
        self._count("export")
        return Export(ns, path, records)

    @rule(exp=exports, into=st.sampled_from((None, *NAMESPACES)), via_peer=st.booleans())
    def import_file(self, exp: Export, into: str | None, via_peer: bool) -> None:
        ns = into or exp.namespace
        memory = self._memory(ns, via_peer)
        self._restore("import", ns, list(exp.records), lambda: memory.import_file(exp.path))

    @rule(
        exp=exports,
        into=st.sampled_from((None, *NAMESPACES)),
        picks=st.sets(st.integers(0, 31), max_size=5),
        twist=st.sampled_from((None, None, None, "altered", "no namespace", "twice")),
        via_peer=st.booleans(),
    )
    def restore(
        self, exp: Export, into: str | None, picks: set[int], twist: str | None, via_peer: bool
    ) -> None:
        """Some of an export's records, in file order, restored directly: into their
        namespace, or copied into another. The twist: one record altered after the
        export, every record without its namespace (as a hand-written file has them, so
        the target namespace's own), or one record listed twice."""
        ns = into or exp.namespace
        chosen = sorted({p % len(exp.records) for p in picks}) if exp.records else []
        records = [dict(exp.records[i]) for i in chosen]
        if records and twist == "altered":
            altered = {"target_new": "Atlantis"} if records[0]["subject"] else {}
            records[0] = {**records[0], **altered, "statement": "Altered."}
        if twist == "no namespace":
            records = [{k: v for k, v in r.items() if k != "namespace"} for r in records]
        if records and twist == "twice":
            records.append(records[0])
        memory = self._memory(ns, via_peer)
        edits = [parse_edit(r) for r in records]
        self._restore("restore", ns, records, lambda: memory.restore(edits))

    def _restore(
        self, name: str, ns: str, records: list[Record], call: Callable[[], list[Edit]]
    ) -> None:
        """``call`` restores ``records`` into ``ns``: this namespace's (and namespace-less)
        records are written as they are, the others copied."""
        self._step(ns, wrote=False)
        own = [r for r in records if r.get("namespace", ns) == ns]
        copied = [r for r in records if r.get("namespace", ns) != ns]
        assert not (own and copied), "the rules restore one namespace's records at a time"
        error = self.model.restore_error(ns, own, copied)
        if error is not None:
            self._refused(name, error, call)
            return
        written = call()
        fresh = self.model.restore_own(ns, own)
        expected_own = [dict(self.model.records(ns)[i]) for i in fresh]
        assert [dump(e) for e in written[: len(fresh)]] == expected_own
        copies = written[len(fresh) :]
        assert len(copies) == len(copied)
        if copies:
            change = copies[0].change_id
            self._new_change(change)
            self.model.copy(ns, copied, [e.id for e in copies], change)
            assert [dump(e) for e in copies] == [self.model.records(ns)[e.id] for e in copies]
        self._step(ns, wrote=bool(written))
        kind = "copy" if copied else "own"
        self._count(name, kind + ("" if written else ":nothing"))

    @precondition(lambda self: self.steps - self.reopened >= 10)
    @rule(ns=SPACES)
    def reopen(self, ns: str) -> None:
        """The process restarts (at most every tenth step): the long-lived memory is
        opened anew."""
        self.reopened = self.steps
        self._step(wrote=False)
        self.memories[ns] = self._open(ns)
        self._count("reopen")

    # ---- invariants ---------------------------------------------------------------------

    def _stored(self) -> dict[str, dict[str, Record]]:
        """Every record in the collection, read from Chroma directly, per namespace."""
        got = self.raw.get(include=["metadatas"])
        out: dict[str, dict[str, Record]] = {ns: {} for ns in NAMESPACES}
        for chroma_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
            ns, edit_id = chroma_id.split("/", 1)
            assert meta is not None and meta["namespace"] == ns, (chroma_id, meta)
            derived = ("key", "created_ts", "written_us", "writer")
            fields = {k: v for k, v in meta.items() if k not in derived}
            out[ns][edit_id] = {k: v for k, v in fields.items() if v is not None}
        return out

    @staticmethod
    def _as_metadata(record: Record) -> Record:
        flat = {k: json.dumps(v) if isinstance(v, list) else v for k, v in record.items()}
        return {k: v for k, v in flat.items() if k != "id" and v is not None}

    def _graph_ids(self, memory: EditMemory) -> set[str]:
        ids = [e.id for e in memory.graph.edits()]
        assert len(ids) == len(set(ids))
        return set(ids)

    @invariant()
    def store_matches_model(self) -> None:
        self.steps += 1
        stored = self._stored()
        for ns in NAMESPACES:
            expected = {i: self._as_metadata(r) for i, r in self.model.records(ns).items()}
            assert stored[ns] == expected, f"namespace {ns!r} differs from the model"  # (1)
            if ns not in self.touched:
                assert stored[ns] == self.before[ns], f"a step elsewhere changed {ns!r}"  # (5)
            keys = Counter(
                key_of(r) for r in stored[ns].values() if r["status"] == "active" and key_of(r)
            )
            assert all(n == 1 for n in keys.values()), f"two active edits of a key: {keys}"  # (2)
            self._check_history(ns, stored[ns])
            if not (self.wrote and ns in self.touched):  # else checked after a sync below
                assert self._graph_ids(self.memories[ns]) == self.model.active_structured(ns)
        self.before = stored
        if self.wrote:
            for ns in self.touched:
                self._check_memories(ns)

    def _check_history(self, ns: str, stored: dict[str, Record]) -> None:
        """(4): while a record exists, what it says and when it was made stay."""
        seen = self.seen[ns]
        for edit_id in set(seen) - set(stored):
            del seen[edit_id]  # undone: the id may be taken again by a new edit
        for edit_id, rec in stored.items():
            fixed = {k: rec.get(k) for k in HISTORY}
            assert seen.setdefault(edit_id, fixed) == fixed, f"{ns}/{edit_id} was rewritten"

    def _check_memories(self, ns: str) -> None:
        """After a write to ``ns``: the memory that wrote holds the model's active facts
        at once, the other long-lived one after ``sync``, a freshly opened one on open;
        the writer lists the model's records."""
        active = self.model.active_structured(ns)
        writer = self.memories[ns] if self.writer is None else self.writer  # len() 0: falsy
        other = self.peers[ns] if writer is self.memories[ns] else self.memories[ns]
        other.sync()
        for memory in (writer, other, self._open(ns)):
            assert self._graph_ids(memory) == active, f"graph of {ns!r} differs"  # (3)
        self._check_listing(writer, ns)

    def _check_listing(self, memory: EditMemory, ns: str) -> None:
        expected = sorted(self.model.records(ns).values(), key=lambda r: r["change_id"])
        listed = [dump(e) for e in memory.edits(status=None)]
        assert sorted(listed, key=lambda r: r["change_id"]) == expected  # (1)

    def teardown(self) -> None:
        for ns in NAMESPACES:
            fresh = self._open(ns)
            for memory in (self.memories[ns], self.peers[ns], fresh):
                memory.sync()
                assert self._graph_ids(memory) == self.model.active_structured(ns)  # (3)
                self._check_listing(memory, ns)
        assert self.model.ambiguous == 0, "a key had two newest edits of one change"
        self.ctx.counts["undo repairs"] += self.model.repairs
        for name in (self.collection, f"{self.collection}__kme"):
            self.ctx.client.delete_collection(name)


# ---- the tests -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Counter[str]]]:
    """Prints one line per variant at the end and writes the counts to a JSON file."""
    yield RUNS
    out = tmp_path_factory.mktemp("store-properties") / "summary.json"
    out.write_text(json.dumps({v: dict(sorted(c.items())) for v, c in RUNS.items()}, indent=1))
    for variant, counts in RUNS.items():
        rules = ", ".join(f"{k}={n}" for k, n in sorted(counts.items()) if ":" in k)
        print(
            f"\nstore properties [{variant}]: {counts['ops']} ops in {counts['sequences']} "
            f"sequences, {counts['seconds']} s; {rules}; undo repairs={counts['undo repairs']} "
            f"(counts in {out})"
        )


def run_machine(ctx: Context, examples: int, steps: int) -> None:
    start = time.monotonic()
    RUNS[ctx.variant] = ctx.counts
    try:
        run_state_machine_as_test(
            lambda: StoreMachine(ctx),
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no slow "explain"
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            ),
        )
    finally:
        ctx.counts["seconds"] = round(time.monotonic() - start)


def no_telemetry() -> ChromaSettings:
    return ChromaSettings(anonymized_telemetry=False)


@pytest.mark.slow
def test_store_keeps_its_contract_embedded(
    tmp_path: Path, summary: dict[str, Counter[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kme_rag.memory.store.MARGIN_US", 0)  # one thread: none needed
    # In-memory SQLite: the same Chroma core, ~4x faster writes than a disk folder here;
    # the server variant below keeps its data on disk.
    client = chromadb.EphemeralClient(settings=no_telemetry())
    (tmp_path / "files").mkdir()
    run_machine(Context("embedded", client, tmp_path / "files"), examples=100, steps=125)
    assert RUNS["embedded"]["ops"] >= 10_000


@pytest.mark.slow
def test_store_keeps_its_contract_on_a_server(
    tmp_path: Path,
    chroma_url: str,
    summary: dict[str, Counter[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("kme_rag.memory.store.MARGIN_US", 0)
    url = urlparse(chroma_url)
    client = chromadb.HttpClient(
        host=url.hostname or "127.0.0.1", port=url.port or 8000, settings=no_telemetry()
    )
    (tmp_path / "files").mkdir()
    run_machine(Context("http", client, tmp_path / "files"), examples=20, steps=40)
