"""The edit memory: edits in one Chroma collection, with the fact graph derived from them.

Chroma is the single source of truth. Each edit is one record: the embedding of its
statement, the statement as document and every field as metadata. Reads see one
namespace. Writes are ordered by *change ids* (time-sortable strings): an add or an import
is one change, a delete is another, and :meth:`EditMemory.undo` reverts the newest.

Re-editing a (subject, relation) supersedes the older edit: the new one records the id it
replaces, the old one becomes ``superseded``; history keeps both. The new edit is written
first, so a crash between the two writes leaves two active edits for one key, which the
graph resolves to the newer and :meth:`EditMemory.refresh` repairs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from kme_rag.errors import EditNotFoundError, NothingToUndoError, StoreError, ValidationError
from kme_rag.memory.edit import Edit, EditStatus, new_change_id, normalise_name
from kme_rag.memory.embedder import Embedder, MiniLMEmbedder
from kme_rag.memory.formats import Format, detect_format, read_edits, write_jsonl
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.mention import last_sentence

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from kme_rag.settings import Settings

__all__ = ["EditMemory", "SearchHit", "UndoResult", "merge_hits", "open_chroma"]

log = logging.getLogger(__name__)

Progress = Callable[[int], object]
_WRITE_BATCH = 256


@dataclass(frozen=True)
class SearchHit:
    """A retrieved edit and its cosine similarity to the query (1 = same direction)."""

    edit: Edit
    score: float


def merge_hits(results: Iterable[Sequence[SearchHit]], k: int | None = None) -> list[SearchHit]:
    """Hits from several searches, each edit once with its best score, best first."""
    best: dict[str, SearchHit] = {}
    for hits in results:
        for hit in hits:
            if hit.edit.id not in best or hit.score > best[hit.edit.id].score:
                best[hit.edit.id] = hit
    return sorted(best.values(), key=lambda h: -h.score)[:k]


@dataclass(frozen=True)
class UndoResult:
    """What an undo reverted: the change id, and the edits removed or restored."""

    change_id: str
    kind: Literal["add", "delete"]
    removed: tuple[str, ...]
    restored: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"undid {self.kind} {self.change_id}: removed {len(self.removed)}, "
            f"restored {len(self.restored)}"
        )


def open_chroma(settings: Settings) -> ClientAPI:
    """An embedded client on ``settings.store``, or an HTTP client for ``settings.chroma_url``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_url:
            from urllib.parse import urlparse

            url = urlparse(settings.chroma_url)
            if not url.hostname:
                raise ValidationError(
                    f"expected KME_CHROMA_URL like http://host:port, got {settings.chroma_url!r}"
                )
            return chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        settings.store.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.store), settings=chroma_settings)
    except ValidationError:
        raise
    except Exception as exc:
        where = settings.chroma_url or str(settings.store)
        raise StoreError(f"cannot open the edit store at {where!r}: {exc}") from exc


def _key_meta(edit: Edit) -> str:
    """The (subject, relation) key as one metadata string ("" for unstructured edits)."""
    key = edit.key
    return "" if key is None else f"{key[0]}\t{key[1]}"


def _metadata(edit: Edit) -> dict[str, Any]:
    return {**edit.to_metadata(), "key": _key_meta(edit)}


def _and(*clauses: dict[str, Any]) -> dict[str, Any]:
    return clauses[0] if len(clauses) == 1 else {"$and": list(clauses)}


class EditMemory:
    """The edits of one namespace: add, search, history, undo, import and export.

    Thread-safe within a process (writes take a lock); several processes share a store
    through a Chroma server, each calling :meth:`refresh` to see the others' writes in
    its graph (search and listing always read Chroma directly).
    """

    def __init__(
        self,
        client: ClientAPI,
        *,
        embedder: Embedder | None = None,
        namespace: str = "default",
        collection: str = "kme_edits",
    ) -> None:
        self._client = client
        self.embedder: Embedder = embedder or MiniLMEmbedder()
        self.namespace = namespace
        self._lock = threading.RLock()
        try:
            self._collection: Collection = client.get_or_create_collection(
                collection, embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        except Exception as exc:
            raise StoreError(f"cannot open collection {collection!r}: {exc}") from exc
        self.graph = FactGraph()
        self.refresh()

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        namespace: str | None = None,
    ) -> EditMemory:
        """Open the store the settings point at (embedded folder or Chroma server)."""
        from kme_rag.settings import Settings

        settings = settings or Settings()
        embedder = embedder or MiniLMEmbedder.from_settings(settings)
        return cls(
            open_chroma(settings),
            embedder=embedder,
            namespace=namespace or settings.namespace,
            collection=settings.collection,
        )

    def with_namespace(self, namespace: str) -> EditMemory:
        """The same store seen through another namespace (shares client and embedder)."""
        return EditMemory(
            self._client,
            embedder=self.embedder,
            namespace=namespace,
            collection=self._collection.name,
        )

    # ---- reading -----------------------------------------------------------------------

    def _get(self, where: dict[str, Any] | None = None, ids: list[str] | None = None) -> list[Edit]:
        clause = _and({"namespace": self.namespace}, *([where] if where else []))
        try:
            got = self._collection.get(ids=ids, where=clause, include=["metadatas"])
        except Exception as exc:
            raise StoreError(f"reading the edit store failed: {exc}") from exc
        metas = got["metadatas"] or []
        return [Edit.from_metadata(i, dict(m)) for i, m in zip(got["ids"], metas, strict=True) if m]

    def refresh(self) -> None:
        """Rebuild the graph from Chroma, and supersede stale duplicates a crash left."""
        active = self._get({"status": "active"})
        newest: dict[str, Edit] = {}
        stale: list[Edit] = []
        for edit in sorted(active, key=lambda e: e.change_id):
            key = _key_meta(edit)
            if key and key in newest:
                stale.append(newest[key])
            if key:
                newest[key] = edit
        if stale:
            log.warning("repairing %d edits left active by an interrupted write", len(stale))
            self._put([e.model_copy(update={"status": "superseded"}) for e in stale])
        self.graph = FactGraph(e for e in active if e not in stale)

    def __len__(self) -> int:
        """The number of active edits."""
        return len(self._get({"status": "active"}))

    def get(self, edit_id: str) -> Edit:
        found = self._get(ids=[edit_id])
        if not found:
            raise EditNotFoundError(f"no edit {edit_id!r} in namespace {self.namespace!r}")
        return found[0]

    def edits(
        self,
        *,
        status: EditStatus | None = "active",
        subject: str | None = None,
        relation: str | None = None,
        source: str | None = None,
    ) -> list[Edit]:
        """Edits oldest first, filtered by status (None: all), subject, relation, source."""
        clauses: list[dict[str, Any]] = []
        if status is not None:
            clauses.append({"status": status})
        if source is not None:
            clauses.append({"source": source})
        edits = self._get(_and(*clauses) if clauses else None)
        if subject is not None:
            edits = [e for e in edits if e.key and e.key[0] == normalise_name(subject)]
        if relation is not None:
            edits = [e for e in edits if e.key and e.key[1] == normalise_name(relation)]
        return sorted(edits, key=lambda e: e.change_id)

    def search(
        self, query: str, k: int = 5, *, vector: np.ndarray | None = None
    ) -> list[SearchHit]:
        """The ``k`` active edits whose statements are nearest the query, best first.

        Chroma's metadata filter costs ~66 ms on 10,000 records against ~4 ms for an
        unfiltered query, so the nearest records are fetched unfiltered (over-fetching
        4x, then 16x) and filtered here; only when too few of them belong to this
        namespace's active edits does the filtered query run. The result is the same:
        if k of the global top-N pass the filter, they are the filtered top k.
        """
        if not query.strip():
            raise ValidationError(f"expected a non-empty query, got {query!r}")
        if k < 1:
            raise ValidationError(f"expected k >= 1, got {k}")
        if vector is None:
            vector = self.embedder.embed([query])  # (1, dim)
        for fetch in (4 * k, 16 * k):
            ids, metas, dists = self._query(vector, fetch, where=None)
            mine = [
                (i, m, d)
                for i, m, d in zip(ids, metas, dists, strict=True)
                if m.get("namespace") == self.namespace and m.get("status") == "active"
            ]
            if len(mine) >= k or len(ids) < fetch:  # enough, or the whole store was seen
                return [SearchHit(Edit.from_metadata(i, m), 1.0 - d) for i, m, d in mine[:k]]
        where = {"$and": [{"namespace": self.namespace}, {"status": "active"}]}
        ids, metas, dists = self._query(vector, k, where=where)
        return [
            SearchHit(Edit.from_metadata(i, m), 1.0 - d)
            for i, m, d in zip(ids, metas, dists, strict=True)
        ]

    def candidates(self, query: str, k: int = 4) -> list[SearchHit]:
        """The edits a query may touch, for the scope step: the ``k`` nearest to the whole
        query, the ``k`` nearest to its last sentence, and every edit whose subject the
        query names (from the fact graph), each once, best similarity first.

        Naming a subject is what most in-scope queries do, and a subject found by name is
        found however many edits are stored; the two searches catch paraphrases that name
        it differently and unstructured edits.
        """
        if not query.strip():
            raise ValidationError(f"expected a non-empty query, got {query!r}")
        focus = last_sentence(query)
        texts = [query] if focus == query else [query, focus]
        vectors = self.embedder.embed(texts)  # (1 or 2, dim), unit rows
        found = [self.search(query, k=k, vector=v[None]) for v in vectors]
        seen = {h.edit.id for hits in found for h in hits}
        named = [
            e
            for e in self.graph.mentioned(query)
            if e.id not in seen and e.namespace == self.namespace
        ]
        if named:
            stored = self._embeddings([e.id for e in named])  # (named, dim)
            scores = (stored @ vectors.T).max(axis=1)  # best cosine over query and focus
            found.append([SearchHit(e, float(s)) for e, s in zip(named, scores, strict=True)])
        return merge_hits(found)

    def _embeddings(self, ids: list[str]) -> np.ndarray:
        try:
            got = self._collection.get(ids=ids, include=["embeddings"])
        except Exception as exc:
            raise StoreError(f"reading the edit store failed: {exc}") from exc
        by_id = dict(zip(got["ids"], got["embeddings"], strict=True))  # type: ignore[arg-type]
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def _query(
        self, vector: np.ndarray, n: int, where: dict[str, Any] | None
    ) -> tuple[list[str], list[dict[str, Any]], list[float]]:
        try:
            got = self._collection.query(
                query_embeddings=vector,
                n_results=n,
                where=where,
                include=["metadatas", "distances"],
            )
        except Exception as exc:
            raise StoreError(f"searching the edit store failed: {exc}") from exc
        metas = [dict(m or {}) for m in (got["metadatas"] or [[]])[0]]
        dists = [float(d) for d in (got["distances"] or [[]])[0]]
        return list(got["ids"][0]), metas, dists

    def history(self, subject: str, relation: str) -> list[Edit]:
        """Every edit ever made to (subject, relation) in this namespace, oldest first."""
        key = f"{normalise_name(subject)}\t{normalise_name(relation)}"
        return sorted(self._get({"key": key}), key=lambda e: e.change_id)

    # ---- writing -----------------------------------------------------------------------

    def _put(self, edits: Sequence[Edit], vectors: np.ndarray | None = None) -> None:
        """Write records as they are: whole (with ``vectors``) or only their metadata.

        Metadata-only writes must not carry documents: Chroma would try to embed them
        with its default model, which it downloads.
        """
        for start in range(0, len(edits), _WRITE_BATCH):
            chunk = edits[start : start + _WRITE_BATCH]
            ids = [e.id for e in chunk]
            metadatas: list[Any] = [_metadata(e) for e in chunk]
            try:
                if vectors is None:  # metadata only: the statement and its embedding stay
                    self._collection.update(ids=ids, metadatas=metadatas)
                else:
                    self._collection.upsert(
                        ids=ids,
                        metadatas=metadatas,
                        documents=[e.statement for e in chunk],
                        embeddings=vectors[start : start + _WRITE_BATCH],
                    )
            except Exception as exc:
                raise StoreError(f"writing to the edit store failed: {exc}") from exc

    def _active_for_keys(self, keys: Iterable[str]) -> dict[str, Edit]:
        wanted = sorted(set(keys) - {""})
        found: dict[str, Edit] = {}
        for start in range(0, len(wanted), _WRITE_BATCH):
            chunk = wanted[start : start + _WRITE_BATCH]
            for edit in self._get(_and({"status": "active"}, {"key": {"$in": chunk}})):
                current = found.get(_key_meta(edit))
                if current is None or current.change_id < edit.change_id:
                    found[_key_meta(edit)] = edit
        return found

    def _resolve_supersedes(
        self, incoming: Sequence[Edit], link: bool
    ) -> tuple[list[Edit], list[Edit]]:
        """Decide, key by key, which edit stays active: the newest change wins.

        Returns the incoming edits (with ``supersedes`` filled in when ``link``) and the
        stored edits that must become ``superseded``.
        """
        holder = self._active_for_keys(_key_meta(e) for e in incoming if e.status == "active")
        stored_ids = {e.id for e in holder.values()}
        out: list[Edit] = []
        for edit in sorted(incoming, key=lambda e: e.change_id):
            key = _key_meta(edit)
            current = holder.get(key) if key and edit.status == "active" else None
            if current is not None and current.id != edit.id:
                if current.change_id > edit.change_id:
                    edit = edit.model_copy(update={"status": "superseded"})
                elif link and edit.supersedes is None:
                    edit = edit.model_copy(update={"supersedes": current.id})
            out.append(edit)
            if key and edit.status == "active":
                holder[key] = edit
        winners = {e.id for e in holder.values()}
        out = [
            e.model_copy(update={"status": "superseded"})
            if e.status == "active" and e.key and e.id not in winners
            else e
            for e in out
        ]
        lost = sorted(stored_ids - winners)
        losers = self._get(ids=lost) if lost else []
        return out, [e.model_copy(update={"status": "superseded"}) for e in losers]

    def _write_new(
        self, edits: Sequence[Edit], link: bool, progress: Progress | None
    ) -> list[Edit]:
        """Embed and store edits; supersede what they replace; update the graph."""
        if not edits:
            return []
        edits = [e.model_copy(update={"namespace": self.namespace}) for e in edits]
        ids = [e.id for e in edits]
        if len(set(ids)) != len(ids):
            raise ValidationError("an import holds the same edit id twice")
        written: list[Edit] = []
        for start in range(0, len(edits), _WRITE_BATCH):
            chunk = edits[start : start + _WRITE_BATCH]
            vectors = self.embedder.embed([e.statement for e in chunk])
            with self._lock:
                out, demoted = self._resolve_supersedes(chunk, link)
                by_id = {e.id: e for e in out}
                ordered = [by_id[e.id] for e in chunk]
                self._put(ordered, vectors)
                if demoted:
                    self._put(demoted)
                for edit in demoted:
                    self.graph.remove(edit.id)
                for edit in sorted(ordered, key=lambda e: e.change_id):
                    self.graph.add(edit)
            written.extend(ordered)
            if progress is not None:
                progress(len(chunk))
        return written

    def add(self, edit: Edit) -> Edit:
        """Store one edit as a change of its own; returns it as stored."""
        return self.add_many([edit])[0]

    def add_many(self, edits: Sequence[Edit], *, progress: Progress | None = None) -> list[Edit]:
        """Store several edits as one change (undone together)."""
        change = new_change_id()
        fresh = [
            e.model_copy(
                update={"change_id": change, "status": "active", "deleted_change_id": None}
            )
            for e in edits
        ]
        return self._write_new(fresh, link=True, progress=progress)

    def restore(self, edits: Sequence[Edit], *, progress: Progress | None = None) -> list[Edit]:
        """Write exported edits back exactly as they were (ids, statuses, change ids)."""
        return self._write_new(list(edits), link=False, progress=progress)

    def delete(self, edit_id: str) -> Edit:
        """Mark an edit deleted (history keeps it; undo brings it back)."""
        with self._lock:
            edit = self.get(edit_id)
            if edit.status == "deleted":
                raise EditNotFoundError(f"edit {edit_id!r} is already deleted")
            gone = edit.model_copy(
                update={"status": "deleted", "deleted_change_id": new_change_id()}
            )
            self._put([gone])
            self.graph.remove(edit_id)
            return gone

    def undo(self) -> UndoResult:
        """Revert the newest change of this namespace: an add (or import), or a delete."""
        with self._lock:
            edits = self._get()
            adds = {e.change_id for e in edits}
            deletes = {e.deleted_change_id for e in edits if e.deleted_change_id}
            if not adds:
                raise NothingToUndoError(f"nothing to undo in namespace {self.namespace!r}")
            change = max(adds | deletes)
            if change in deletes:
                return self._undo_delete(
                    change, [e for e in edits if e.deleted_change_id == change]
                )
            return self._undo_add(change, edits)

    def _undo_delete(self, change: str, edits: list[Edit]) -> UndoResult:
        back = [e.model_copy(update={"status": "active", "deleted_change_id": None}) for e in edits]
        out, demoted = self._resolve_supersedes(back, link=False)
        self._put(out + demoted)
        self.refresh()
        return UndoResult(change, "delete", (), tuple(e.id for e in out))

    def _undo_add(self, change: str, edits: list[Edit]) -> UndoResult:
        added = [e for e in edits if e.change_id == change]
        added_ids = {e.id for e in added}
        replaced = {e.supersedes for e in added if e.supersedes} - added_ids
        revived = [
            e.model_copy(update={"status": "active"})
            for e in edits
            if e.id in replaced and e.status == "superseded"
        ]
        if revived:
            self._put(revived)
        try:
            self._collection.delete(ids=[e.id for e in added])
        except Exception as exc:
            raise StoreError(f"writing to the edit store failed: {exc}") from exc
        self.refresh()
        return UndoResult(change, "add", tuple(e.id for e in added), tuple(e.id for e in revived))

    # ---- files ---------------------------------------------------------------------------

    def import_file(
        self,
        path: Path,
        fmt: Format | None = None,
        *,
        limit: int | None = None,
        progress: Progress | None = None,
    ) -> list[Edit]:
        """Import a file: JSONL is restored as exported, the other formats are one new change."""
        fmt = fmt or detect_format(path)
        return self.import_edits(read_edits(path, fmt, limit), fmt, progress=progress)

    def import_edits(
        self, edits: Sequence[Edit], fmt: Format, *, progress: Progress | None = None
    ) -> list[Edit]:
        """Store edits read from a file of format ``fmt``: JSONL is restored exactly as it
        was exported; the public formats are added as one new change."""
        if fmt == "jsonl":
            return self.restore(edits, progress=progress)
        return self.add_many(edits, progress=progress)

    def export(self, path: Path) -> int:
        """Write every edit of the namespace, all statuses, oldest first, as JSONL."""
        return write_jsonl(self.edits(status=None), path)
