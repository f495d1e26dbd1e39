"""The edit memory: edits in one Chroma collection, with the fact graph derived from them.

Chroma is the single source of truth. Each edit is one record: the embedding of its
statement, the statement as document and every field as metadata. Reads see one
namespace. Writes are ordered by *change ids* (time-sortable strings): an add or an import
is one change, a delete is another, and :meth:`EditMemory.undo` reverts the newest.

**Ids.** A record's key is ``"<namespace>/<edit id>"``: an edit id is unique within its
namespace, and the same id in two namespaces names two records. Nothing overwrites a
record by id:

- :meth:`EditMemory.add` / :meth:`~EditMemory.add_many` with an id already present in the
  namespace (any status) raise :class:`~kme_rag.errors.EditConflictError` (HTTP 409) and
  write nothing; without an id the store draws a fresh one.
- :meth:`EditMemory.restore` (the JSONL import) writes edits exported from *this*
  namespace back exactly as they were; a record already there with the same content is
  skipped (re-running an interrupted import is safe), one with other content is a
  conflict. Edits exported from *another* namespace are copied: new ids, ``origin`` set to
  ``"<namespace>/<id>"`` of the source, one new change (undone together). The source
  namespace is never touched.

**Write order and repair.** Re-editing a (subject, relation) supersedes the older edit:
the new one records the id it replaces, the old one becomes ``superseded`` with the
change that demoted it (``superseded_change_id``); history keeps both. Every change that
touches several records writes the record that becomes active *first* (the new edit, the
revived one) and demotes or deletes the others after, so a crash between the writes can
only leave two active edits for one key, never none. :meth:`EditMemory.refresh` (on open)
and :meth:`EditMemory.sync` (a server's poll) repair that: the newest change keeps the
key, which is exactly the state the interrupted change was writing towards (or, for an
undo, the state before it).

**Freshness.** A side collection ``<collection>__kme`` holds the schema version and one
*stamp* per namespace, rewritten after every write by any process. :meth:`EditMemory.sync`
reads the stamp (one record), and only when it moved reads the records other writers
wrote since its last look (``written_us``, less a margin; ``writer`` tells them from its
own, which are in its graph already) and applies them to the graph; after an undo removed
records (its *removal stamp* moved) it compares the active ids instead. The stamp is read
*before* the records and writers bump it *after* theirs, so a write is either seen by this
sync or moves the stamp for the next. An open does the same from the graph's snapshot
(:mod:`kme_rag.memory.snapshot`) when there is one.

**Paging.** Every bulk read is paged (``_PAGE`` records, ``_IDS`` ids per call), so a store
of any size opens: one ``get`` of every record fails in SQLite past ~32,000 variables.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from kme_rag.errors import (
    EditConflictError,
    EditNotFoundError,
    NothingToUndoError,
    StoreError,
    ValidationError,
)
from kme_rag.memory.edit import Edit, EditStatus, new_change_id, new_edit_id, normalise_name
from kme_rag.memory.embedder import Embedder, MiniLMEmbedder
from kme_rag.memory.formats import Format, detect_format, read_edits, write_jsonl
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.mention import asking_sentence
from kme_rag.memory.snapshot import (
    MARGIN_US,
    Snapshot,
    load_snapshot,
    now_us,
    save_snapshot,
    snapshot_path,
)

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from kme_rag.memory.extract import Extractor
    from kme_rag.settings import Settings

__all__ = [
    "SCHEMA_VERSION",
    "EditMemory",
    "SearchHit",
    "TextAdded",
    "UndoResult",
    "merge_hits",
    "open_chroma",
    "record_key",
    "snapshot_folder",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[int], object]
SCHEMA_VERSION = 2  # 1: records keyed by edit id alone; 2: "<namespace>/<edit id>"
_WRITE_BATCH = 256
_PAGE = 5000  # records per paged read
_IDS = 1000  # ids per read or delete by id
_SEP = "/"  # never in a namespace or an edit id (both match [A-Za-z0-9_.:-]+)
_MUTABLE = frozenset({"status", "supersedes", "deleted_change_id", "superseded_change_id"})
SNAPSHOT_MIN = 5000  # active edits from which the graph is saved (fewer rebuild in <1 s)
_SAVE_AFTER = 1000  # changes to the graph since its last save that save it again, and
_SAVE_SHARE = 4  # at least a quarter of its size: the saves of a growing store cost O(1) an edit
_SCHEMA = "kme/schema"  # no namespace holds "/", so no namespace's stamp takes this name


def record_key(namespace: str, edit_id: str) -> str:
    """The Chroma id of an edit: ``"<namespace>/<edit id>"``."""
    return f"{namespace}{_SEP}{edit_id}"


def _edit_id(key: str) -> str:
    return key.split(_SEP, 1)[1] if _SEP in key else key


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _store_call(what: str, call: Callable[..., T], /, **kwargs: Any) -> T:
    """``call(**kwargs)``, a Chroma call, with its failures turned into :class:`StoreError`."""
    try:
        return call(**kwargs)
    except Exception as exc:
        raise StoreError(f"{what} the edit store failed: {exc}") from exc


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


def snapshot_folder(settings: Settings) -> Path:
    """Where the graph snapshots of a store live: beside an embedded store, in this user's
    cache for a Chroma server (one folder per server URL)."""
    if settings.chroma_url:
        digest = hashlib.sha256(settings.chroma_url.encode()).hexdigest()[:16]
        return settings.cache_dir / "graphs" / digest
    return settings.store / "kme-graphs"


def _key_meta(edit: Edit) -> str:
    """The (subject, relation) key as one metadata string ("" for unstructured edits)."""
    key = edit.key
    return "" if key is None else f"{key[0]}\t{key[1]}"


def _metadata(edit: Edit, writer: str) -> dict[str, Any]:
    """The record's metadata: the edit's fields, its key, when this write was made and by
    which :class:`EditMemory` (``written_us`` and ``writer``: how an open from a snapshot,
    or a sync, finds the changes it has not applied yet)."""
    return {**edit.to_metadata(), "key": _key_meta(edit), "written_us": now_us(), "writer": writer}


def _and(*clauses: dict[str, Any]) -> dict[str, Any]:
    return clauses[0] if len(clauses) == 1 else {"$and": list(clauses)}


def _same_content(a: Edit, b: Edit, *, made_apart: bool = False) -> bool:
    """Whether two records are one edit (statuses and supersede links may differ; with
    ``made_apart``, also when, in which namespace and by which change they were made)."""
    skip = set(_MUTABLE) | ({"change_id", "created_at", "namespace"} if made_apart else set())
    return a.model_dump(exclude=skip) == b.model_dump(exclude=skip)


def _demote(edit: Edit, by: Edit) -> Edit:
    return edit.model_copy(update={"status": "superseded", "superseded_change_id": by.change_id})


def _newest_per_key(active: Iterable[Edit]) -> tuple[list[Edit], list[Edit]]:
    """(survivors, stale): of several active edits of one key, all but the newest are stale."""
    newest: dict[str, Edit] = {}
    stale: list[Edit] = []
    survivors: list[Edit] = []
    for edit in sorted(active, key=lambda e: e.change_id):
        key = _key_meta(edit)
        if not key:
            survivors.append(edit)
            continue
        if key in newest:
            stale.append(newest[key])
        newest[key] = edit
    survivors.extend(newest.values())
    return survivors, [_demote(e, newest[_key_meta(e)]) for e in stale]


class _Stamps:
    """The side collection: the schema version, one change stamp per namespace (its
    name), and one removal stamp per namespace (``<namespace>/removed``, moved by an undo
    that deletes records)."""

    def __init__(self, client: ClientAPI, collection: str) -> None:
        self._collection: Collection = _store_call(
            "opening",
            client.get_or_create_collection,
            name=f"{collection}__kme",
            embedding_function=None,
        )

    def read(self, name: str) -> str | None:
        got = _store_call("reading", self._collection.get, ids=[name], include=["metadatas"])
        metas = got["metadatas"] or []
        return str(metas[0]["value"]) if metas and metas[0] else None

    def write(self, name: str, value: str) -> None:
        _store_call(
            "writing to",
            self._collection.upsert,
            ids=[name],
            embeddings=np.ones((1, 1), dtype=np.float32),
            metadatas=[{"value": value}],
        )


def _same_object(stored: Edit, new: Edit) -> bool:
    """Whether ``new`` names the object ``stored`` already has (or one of its aliases)."""
    names = {normalise_name(n) for n in (stored.target_new or "", *stored.target_aliases)}
    return normalise_name(new.target_new or "") in names


@dataclass(frozen=True)
class TextAdded:
    """What :meth:`EditMemory.add_text` did with a text: the records it wrote (its facts,
    and a statement-only edit of the sentences no fact was read from; the statement
    itself when nothing was ``understood``), the stored edits the text only restated
    (nothing written for them) and the ids its facts superseded."""

    text: str
    stored: tuple[Edit, ...]
    restated: tuple[Edit, ...]
    superseded: tuple[str, ...]
    understood: bool


class EditMemory:
    """The edits of one namespace: add, search, history, undo, import and export.

    Thread-safe within a process (writes and :meth:`sync` take one lock; the graph locks
    itself). Several processes share a store through a Chroma server, each calling
    :meth:`sync` to see the others' writes in its graph (search and listing always read
    Chroma directly).
    """

    def __init__(
        self,
        client: ClientAPI,
        *,
        embedder: Embedder | None = None,
        namespace: str = "default",
        collection: str = "kme_edits",
        snapshots: Path | None = None,
        snapshot_min: int = SNAPSHOT_MIN,
    ) -> None:
        """``snapshots``: the folder the graph is saved in once it has ``snapshot_min``
        active edits (None: rebuilt on every open)."""
        self._client = client
        self.embedder: Embedder = embedder or MiniLMEmbedder()
        self.namespace = namespace
        self._lock = threading.RLock()
        self._collection: Collection = _store_call(
            f"opening collection {collection!r} of",
            client.get_or_create_collection,
            name=collection,
            embedding_function=None,
            metadata={"hnsw:space": "cosine"},
        )
        self._stamps = _Stamps(client, collection)
        self._migrate()
        self.graph = FactGraph()
        self._active: set[str] = set()
        self._stamp: str | None = None
        self._removals: str | None = None
        self._watermark = 0  # every write from this time on is yet to be read (see sync)
        self._writer = uuid.uuid4().hex[:16]  # this instance's writes apply to its graph as made
        self._snapshots = snapshots
        self.snapshot_min = snapshot_min
        self._unsaved = 0  # changes to the graph since it was saved (or loaded)
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
            snapshots=snapshot_folder(settings),
        )

    def with_namespace(self, namespace: str) -> EditMemory:
        """The same store seen through another namespace (shares client and embedder)."""
        return EditMemory(
            self._client,
            embedder=self.embedder,
            namespace=namespace,
            collection=self._collection.name,
            snapshots=self._snapshots,
            snapshot_min=self.snapshot_min,
        )

    # ---- schema ------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Re-key a version-1 store (records keyed by edit id alone) by namespace: each
        record is written under its new key, then its old key is deleted, so an
        interrupted migration resumes on the next open and loses nothing."""
        version = self._schema_version()
        if version is not None and version >= SCHEMA_VERSION:
            return
        old = [i for ids, _ in self._pages(None, include=[]) for i in ids if _SEP not in i]
        for chunk in _chunks(old, _IDS):
            got = _store_call(
                "reading",
                self._collection.get,
                ids=list(chunk),
                include=["metadatas", "documents", "embeddings"],
            )
            metas = [dict(m or {}) for m in got["metadatas"] or []]
            keys = [
                record_key(str(m["namespace"]), i) for i, m in zip(got["ids"], metas, strict=True)
            ]
            _store_call(
                "writing to",
                self._collection.upsert,
                ids=keys,
                metadatas=metas,
                documents=got["documents"],
                embeddings=got["embeddings"],
            )
            _store_call("writing to", self._collection.delete, ids=got["ids"])
        if old:
            log.warning(
                "re-keyed %d edits by namespace (store schema %d)", len(old), SCHEMA_VERSION
            )
        self._stamps.write(_SCHEMA, str(SCHEMA_VERSION))

    def _schema_version(self) -> int | None:
        # Until 2026-12 the version was stamped as "schema", a name a namespace can take
        # (its change stamp then overwrote it): a value that is no number is not a version.
        for name in (_SCHEMA, "schema"):
            value = self._stamps.read(name)
            if value is not None and value.isdigit():
                return int(value)
        return None

    # ---- reading -----------------------------------------------------------------------

    def _pages(
        self, where: dict[str, Any] | None, include: list[Any]
    ) -> Iterator[tuple[list[str], list[Any]]]:
        """Every record matching ``where``, ``_PAGE`` at a time: (keys, metadatas)."""
        offset = 0
        while True:
            got = _store_call(
                "reading",
                self._collection.get,
                where=where,
                include=include,
                limit=_PAGE,
                offset=offset,
            )
            ids = list(got["ids"])
            yield ids, list(got["metadatas"] or [])
            if len(ids) < _PAGE:
                return
            offset += _PAGE

    def _where(self, where: dict[str, Any] | None) -> dict[str, Any]:
        return _and({"namespace": self.namespace}, *([where] if where else []))

    def _records(self, where: dict[str, Any] | None = None) -> list[Edit]:
        """This namespace's edits matching ``where`` (paged reads)."""
        return [
            Edit.from_metadata(_edit_id(i), dict(m))
            for ids, metas in self._pages(self._where(where), ["metadatas"])
            for i, m in zip(ids, metas, strict=True)
            if m
        ]

    def _ids(self, where: dict[str, Any] | None = None) -> set[str]:
        """The ids of this namespace's edits matching ``where`` (ids only, paged)."""
        return {_edit_id(i) for ids, _ in self._pages(self._where(where), []) for i in ids}

    def _by_ids(self, edit_ids: Iterable[str]) -> dict[str, Edit]:
        """This namespace's edits with these ids (any status), by id."""
        keys = sorted({record_key(self.namespace, i) for i in edit_ids})
        found: dict[str, Edit] = {}
        for chunk in _chunks(keys, _IDS):
            got = _store_call(
                "reading", self._collection.get, ids=list(chunk), include=["metadatas"]
            )
            for key, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                if meta:
                    edit = Edit.from_metadata(_edit_id(key), dict(meta))
                    found[edit.id] = edit
        return found

    def refresh(self) -> None:
        """Load the graph: from its snapshot and the records written since when there is
        one, else rebuilt from every active record (saved when it is large); both repair
        what an interrupted write left."""
        with self._lock:
            stamp = self._stamps.read(self.namespace)  # before the records: see sync()
            removals = self._stamps.read(self._removal_stamp)
            saved = self._load_snapshot()
            if saved is None:
                self._rebuild()
                changed = len(self._active) + 1  # nothing saved: any size is worth saving
            else:
                self.graph, self._active = saved.graph, set(saved.active)
                self._watermark = saved.watermark_us
                same = removals == saved.removals  # else an undo removed records since
                # The saver's own writes up to the save are in it (its clock, no margin).
                known = {
                    "$or": [
                        {"writer": {"$ne": saved.writer}},
                        {"written_us": {"$gte": saved.saved_us}},
                    ]
                }
                changed = self._catch_up(known) if same else self._compare_ids()
            self._stamp, self._removals = stamp, removals
            self._unsaved = changed
            # Saved when the catch-up was long, whatever the share: every later open
            # would read the same records again.
            self._save_if_due(share=False)

    def _rebuild(self) -> None:
        start = now_us()
        active = self._repair(self._records({"status": "active"}))
        self.graph = FactGraph(active)
        self._active = {e.id for e in active}
        self._watermark = start

    def sync(self, *, full: bool = False) -> bool:
        """Apply other processes' writes to the graph (and repair interrupted ones); True
        when the graph changed. Reads one stamp record unless it moved; then the records
        written since the last look, or, after an undo removed records (or with ``full``,
        for writers that died before their stamp), compares the active ids."""
        with self._lock:
            stamp = self._stamps.read(self.namespace)
            if stamp == self._stamp and not full:
                return False
            removals = self._stamps.read(self._removal_stamp)
            if full or removals != self._removals:
                changed = self._compare_ids()
            else:
                changed = self._catch_up()
            self._stamp, self._removals = stamp, removals
            return changed > 0

    @property
    def _removal_stamp(self) -> str:
        return f"{self.namespace}{_SEP}removed"

    def _catch_up(self, known: dict[str, Any] | None = None) -> int:
        """Apply every record another writer wrote since the watermark (less the margin):
        the incremental path of an open from a snapshot and of a sync (this instance's
        own writes are in the graph already, and so are those ``known`` leaves out).
        Returns the number of graph changes."""
        start = now_us()
        since = {"written_us": {"$gte": self._watermark - MARGIN_US}}
        others = {"writer": {"$ne": self._writer}}
        # No namespace clause: it matches every record of the namespace, which costs
        # ~0.1 s at 100,000 even when nothing was written; the few records since are
        # sorted out by their keys instead.
        mine = f"{self.namespace}{_SEP}"
        written = [
            Edit.from_metadata(_edit_id(key), dict(meta))
            for keys, metas in self._pages(
                _and(since, others, *([known] if known else [])), ["metadatas"]
            )
            for key, meta in zip(keys, metas, strict=True)
            if meta and key.startswith(mine)
        ]
        arrived = [e for e in written if e.status == "active"]
        left = {e.id for e in written if e.status != "active"}
        self._watermark = start
        return self._apply(arrived, left & self._active)

    def _compare_ids(self) -> int:
        """Compare the active ids with the graph's and apply the difference (the path
        that sees records an undo removed)."""
        start = now_us()
        now = self._ids({"status": "active"})
        arrived = list(self._by_ids(now - self._active).values())
        self._watermark = start
        return self._apply(arrived, self._active - now)

    def _apply(self, arrived: list[Edit], gone: set[str]) -> int:
        arrived = [e for e in arrived if e.id not in self._active]
        keys = sorted({_key_meta(e) for e in arrived} - {""})
        if keys:  # an interrupted supersede leaves a new edit beside the old one
            stale = {e.id for e in self._repair(self._active_of_keys(keys), only_stale=True)}
            arrived = [e for e in arrived if e.id not in stale]
            gone |= stale & self._active
        for edit_id in gone:
            self.graph.remove(edit_id)
            self._active.discard(edit_id)
        for edit in sorted(arrived, key=lambda e: e.change_id):
            self.graph.add(edit)
            self._active.add(edit.id)
        if arrived or gone:
            log.info(
                "namespace %r: %d edits arrived, %d left", self.namespace, len(arrived), len(gone)
            )
        return len(arrived) + len(gone)

    def _snapshot_file(self) -> Path | None:
        if self._snapshots is None:
            return None
        return snapshot_path(self._snapshots, self._collection.name, self.namespace)

    def _load_snapshot(self) -> Snapshot | None:
        path = self._snapshot_file()
        if path is None:
            return None
        return load_snapshot(path, str(self._collection.id), self.namespace)

    def save_snapshot(self) -> Path | None:
        """Save the graph as of now (done on its own after a rebuild of a large store, a
        large import or a long catch-up); returns the file, or None without a folder."""
        path = self._snapshot_file()
        if path is None:
            return None
        with self._lock:
            snapshot = Snapshot(
                self.graph,
                frozenset(self._active),
                self._watermark,
                self._removals,
                self._writer,
                now_us(),
            )
            save_snapshot(path, str(self._collection.id), self.namespace, snapshot)
            self._unsaved = 0
        log.info("saved the graph of %d facts to %s", len(self.graph), path)
        return path

    def _repair(self, active: list[Edit], *, only_stale: bool = False) -> list[Edit]:
        """Demote all but the newest active edit of each key; returns the survivors (or,
        with ``only_stale``, the demoted)."""
        survivors, stale = _newest_per_key(active)
        if stale:
            log.info(
                "demoting %d older active edits of a key (left by an interrupted write, "
                "or revived together by an undo)",
                len(stale),
            )
            self._update(stale)
            self._bump()
        return stale if only_stale else survivors

    def __len__(self) -> int:
        """The number of active edits."""
        return len(self._ids({"status": "active"}))

    def get(self, edit_id: str) -> Edit:
        found = self._by_ids([edit_id]).get(edit_id)
        if found is None:
            raise EditNotFoundError(f"no edit {edit_id!r} in namespace {self.namespace!r}")
        return found

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
        edits = self._records(_and(*clauses) if clauses else None)
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
                return [
                    SearchHit(Edit.from_metadata(_edit_id(i), m), 1.0 - d) for i, m, d in mine[:k]
                ]
        where = {"$and": [{"namespace": self.namespace}, {"status": "active"}]}
        ids, metas, dists = self._query(vector, k, where=where)
        return [
            SearchHit(Edit.from_metadata(_edit_id(i), m), 1.0 - d)
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
        focus = asking_sentence(query)
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
            current = self._current(named)  # as Chroma holds them now
            if current:
                stored = np.asarray([v for _, v in current], dtype=np.float32)  # (named, dim)
                scores = (stored @ vectors.T).max(axis=1)  # best cosine over query and focus
                hits = [SearchHit(e, float(s)) for (e, _), s in zip(current, scores, strict=True)]
                found.append(hits)
        return merge_hits(found)

    def _current(self, edits: list[Edit]) -> list[tuple[Edit, np.ndarray]]:
        """Those of ``edits`` still active in Chroma, as stored there, with their
        embeddings. The graph may name an edit another process has just undone or
        deleted; until this process syncs, Chroma's word is the one that counts."""
        keys = [record_key(self.namespace, e.id) for e in edits]
        got = _store_call(
            "reading", self._collection.get, ids=keys, include=["metadatas", "embeddings"]
        )
        vectors: Any = got["embeddings"]
        rows = zip(got["ids"], got["metadatas"] or [], vectors, strict=True)
        found = {
            key: (Edit.from_metadata(_edit_id(key), dict(meta)), np.asarray(vector))
            for key, meta, vector in rows
            if meta and meta.get("status") == "active"
        }
        return [found[k] for k in keys if k in found]

    def _query(
        self, vector: np.ndarray, n: int, where: dict[str, Any] | None
    ) -> tuple[list[str], list[dict[str, Any]], list[float]]:
        got = _store_call(
            "searching",
            self._collection.query,
            query_embeddings=vector,
            n_results=n,
            where=where,
            include=["metadatas", "distances"],
        )
        metas = [dict(m or {}) for m in (got["metadatas"] or [[]])[0]]
        dists = [float(d) for d in (got["distances"] or [[]])[0]]
        return list(got["ids"][0]), metas, dists

    def history(self, subject: str, relation: str) -> list[Edit]:
        """Every edit ever made to (subject, relation) in this namespace, oldest first."""
        key = f"{normalise_name(subject)}\t{normalise_name(relation)}"
        return sorted(self._records({"key": key}), key=lambda e: e.change_id)

    # ---- writing -----------------------------------------------------------------------

    def _bump(self) -> None:
        """Tell every process that this namespace changed (after the records are written)."""
        self._stamps.write(self.namespace, new_change_id())

    def _insert(self, edits: Sequence[Edit], vectors: np.ndarray) -> None:
        """Write new records. ``add`` never replaces a record that has the key."""
        _store_call(
            "writing to",
            self._collection.add,
            ids=[record_key(self.namespace, e.id) for e in edits],
            metadatas=[
                {k: v for k, v in _metadata(e, self._writer).items() if v is not None}
                for e in edits
            ],
            documents=[e.statement for e in edits],
            embeddings=vectors,
        )

    def _check_inserted(self, edits: Sequence[Edit]) -> None:
        """Chroma's ``add`` skips a key that exists: when another process took one of
        these ids between our check and our write, take ours back and refuse."""
        stored = self._by_ids(e.id for e in edits)
        lost = [e.id for e in edits if not _same_content(stored[e.id], e)]
        if lost:
            self._remove([e.id for e in edits if e.id not in lost])
            raise EditConflictError(
                f"edit id {lost[0]!r} was taken in namespace {self.namespace!r} by another "
                "writer at the same moment; nothing of this batch was kept"
            )

    def _update(self, edits: Sequence[Edit]) -> None:
        """Rewrite records' metadata; the statement and its embedding stay.

        Metadata-only writes must not carry documents: Chroma would try to embed them
        with its default model, which it downloads.
        """
        for chunk in _chunks(edits, _WRITE_BATCH):
            _store_call(
                "writing to",
                self._collection.update,
                ids=[record_key(self.namespace, e.id) for e in chunk],
                metadatas=[_metadata(e, self._writer) for e in chunk],
            )

    def _remove(self, edit_ids: Sequence[str]) -> None:
        keys = [record_key(self.namespace, i) for i in edit_ids]
        for chunk in _chunks(keys, _IDS):
            _store_call("writing to", self._collection.delete, ids=list(chunk))

    def _active_of_keys(self, keys: Sequence[str]) -> list[Edit]:
        """Every active edit of these (subject, relation) keys."""
        found: list[Edit] = []
        for chunk in _chunks(sorted(set(keys) - {""}), _WRITE_BATCH):
            found += self._records(_and({"status": "active"}, {"key": {"$in": list(chunk)}}))
        return found

    def _resolve_supersedes(
        self, incoming: Sequence[Edit], link: bool
    ) -> tuple[list[Edit], list[Edit]]:
        """Decide, key by key, which edit stays active: the newest change wins (between
        edits of one change, the later in ``incoming``).

        Returns the incoming edits in their order (losers marked ``superseded``, winners
        with ``supersedes`` filled in when ``link``) and the stored edits to demote.
        """
        keys = [_key_meta(e) for e in incoming if e.status == "active"]
        stored, _ = _newest_per_key(self._active_of_keys(keys))
        holder = {_key_meta(e): e for e in stored if _key_meta(e)}
        before = dict(holder)
        out = {e.id: e for e in incoming}
        for edit in sorted(incoming, key=lambda e: e.change_id):
            key = _key_meta(edit)
            if not key or edit.status != "active":
                continue
            current = holder.get(key)
            if current is not None and current.change_id > edit.change_id:
                out[edit.id] = _demote(edit, current)
                continue
            if current is not None:
                if link and edit.supersedes is None:
                    out[edit.id] = out[edit.id].model_copy(update={"supersedes": current.id})
                if current.id in out:  # an incoming edit that a later one replaces
                    out[current.id] = _demote(out[current.id], edit)
            holder[key] = out[edit.id]
        demoted = [_demote(e, holder[k]) for k, e in before.items() if holder[k].id != e.id]
        return [out[e.id] for e in incoming], demoted

    def _refuse_taken(self, edits: Sequence[Edit]) -> None:
        taken = self._by_ids(e.id for e in edits)
        if taken:
            first = sorted(taken)[0]
            raise EditConflictError(
                f"edit id {first!r} is already taken in namespace {self.namespace!r} "
                f"({len(taken)} of {len(edits)} ids are): ids are never overwritten; "
                "leave the id out for a fresh one"
            )

    def _write(
        self,
        edits: Sequence[Edit],
        link: bool,
        progress: Progress | None,
        *,
        checked: bool = False,
    ) -> list[Edit]:
        """Embed and store new records; supersede what they replace; update the graph.

        Per batch: the new records first, then the demoted ones; the stamp once at the
        end (a writer that dies before it is caught by the next full comparison).
        ``checked``: the ids are known to be free (drawn by the store, 64 random bits, or
        looked up by the caller), so no batch reads them back.
        """
        if len({e.id for e in edits}) != len(edits):
            raise ValidationError("one change holds the same edit id twice")
        written: list[Edit] = []
        try:
            self._write_chunks(edits, link, progress, written, checked)
        finally:
            if written:
                self._bump()  # once per change: a rewrite of the stamp costs ~30 ms
        with self._lock:
            self._unsaved += len(written)
            self._save_if_due(catch_up=True)
        return written

    def _save_if_due(self, *, catch_up: bool = False, share: bool = True) -> None:
        """Save the graph when it is large and has changed enough since its last save:
        ``_SAVE_AFTER`` changes, and (``share``) a quarter of its size, so a store grown
        by many writes is saved O(1) times an edit. ``catch_up``: read others' writes
        first, so the saved watermark is now."""
        if self._snapshots is None or len(self._active) < self.snapshot_min:
            return
        due = min(_SAVE_AFTER, self.snapshot_min)
        if share:
            due = max(due, len(self._active) // _SAVE_SHARE)
        if self._unsaved >= max(due, 1):
            if catch_up:
                self._catch_up()
            self.save_snapshot()

    def _write_chunks(
        self,
        edits: Sequence[Edit],
        link: bool,
        progress: Progress | None,
        written: list[Edit],
        checked: bool,
    ) -> None:
        """Write ``edits`` batch by batch. The next batch is embedded while this one is
        written: Chroma's write and the encoder each leave a core idle much of the time,
        so side by side they take less than one after the other."""
        chunks = list(_chunks(edits, _WRITE_BATCH))
        if not chunks:
            return
        with ThreadPoolExecutor(1, thread_name_prefix="kme-embed") as ahead:

            def embed(chunk: Sequence[Edit]) -> Future[np.ndarray]:
                return ahead.submit(self.embedder.embed, [e.statement for e in chunk])

            embedding = embed(chunks[0])
            for number, chunk in enumerate(chunks):
                vectors = embedding.result()  # (chunk, dim)
                if number + 1 < len(chunks):
                    embedding = embed(chunks[number + 1])
                written.extend(self._write_chunk(chunk, vectors, link, checked))
                if progress is not None:
                    progress(len(chunk))

    def _write_chunk(
        self, chunk: Sequence[Edit], vectors: np.ndarray, link: bool, checked: bool
    ) -> list[Edit]:
        with self._lock:
            if not checked:
                self._refuse_taken(chunk)
            out, demoted = self._resolve_supersedes(chunk, link)
            self._insert(out, vectors)
            if not checked:
                self._check_inserted(out)
            self._update(demoted)
            for edit in demoted + [e for e in out if e.status != "active"]:
                self.graph.remove(edit.id)
                self._active.discard(edit.id)
            for edit in sorted(out, key=lambda e: e.change_id):
                if edit.status == "active":
                    self.graph.add(edit)
                    self._active.add(edit.id)
        return out

    def add(self, edit: Edit) -> Edit:
        """Store one edit as a change of its own; returns it as stored."""
        return self.add_many([edit])[0]

    def add_many(self, edits: Sequence[Edit], *, progress: Progress | None = None) -> list[Edit]:
        """Store several edits as one change (undone together). The store sets the
        namespace, change id, status and supersede links; an id already present in the
        namespace is refused (:class:`EditConflictError`) before anything is written."""
        drawn = all("id" not in e.model_fields_set for e in edits)
        fresh = self._as_change(edits, new_change_id())
        if not drawn:
            self._refuse_taken(fresh)
        return self._write(fresh, link=True, progress=progress, checked=drawn)

    def _as_change(self, edits: Sequence[Edit], change: str) -> list[Edit]:
        """``edits`` as new records of one change of this namespace."""
        return [
            e.model_copy(
                update={
                    "namespace": self.namespace,
                    "change_id": change,
                    "status": "active",
                    "supersedes": None,
                    "deleted_change_id": None,
                    "superseded_change_id": None,
                }
            )
            for e in edits
        ]

    def add_text(
        self, text: str, *, extractor: Extractor | None = None, **fields: Any
    ) -> TextAdded:
        """Store what a free-text statement says, as one change (undone together).

        The extractor (default: :class:`~kme_rag.scope.extract.RelationExtractor` on this
        memory's embedder; :class:`~kme_rag.memory.extract.PatternExtractor` is the
        model-free alternative) reads (subject, relation, object) facts from the text;
        each becomes a structured edit with ``derived_from`` = the text. Reconciled with
        what is stored: a fact that restates the active edit of its (subject, relation)
        is not written; one that contradicts it supersedes it (history keeps both). A
        text nothing is understood in is stored as it is, a statement-only edit; so are
        the sentences of a passage no fact was read from (one statement-only edit beside
        the facts). ``fields`` (``source``, ``id``…) go on every record written."""
        from kme_rag.memory.extract import split_sentences
        from kme_rag.scope.extract import text_extractor

        facts = (extractor or text_extractor(self.embedder)).extract(text)
        if not facts:
            stored = self.add_many([Edit.model_validate({"statement": text, **fields})])
            return TextAdded(text, tuple(stored), (), (), understood=False)
        edits = [f.to_edit(text, **fields) for f in facts]
        read = {f.sentence for f in facts}
        rest = " ".join(s for s in split_sentences(text) if s not in read)
        kept = (
            [Edit.model_validate({"statement": rest, "derived_from": text, **fields})]
            if rest
            else []
        )
        with self._lock:
            current, _ = _newest_per_key(self._active_of_keys([_key_meta(e) for e in edits]))
            holder = {_key_meta(e): e for e in current}
            restated = [
                holder[k]
                for e in edits
                if (k := _key_meta(e)) in holder and _same_object(holder[k], e)
            ]
            same = {_key_meta(r) for r in restated}
            fresh = [e for e in edits if _key_meta(e) not in same]
            fresh += kept  # what was not understood is kept, not dropped
            stored = self.add_many(fresh) if fresh else []
        superseded = tuple(e.supersedes for e in stored if e.supersedes)
        return TextAdded(text, tuple(stored), tuple(restated), superseded, understood=True)

    def restore(self, edits: Sequence[Edit], *, progress: Progress | None = None) -> list[Edit]:
        """Write exported edits back: this namespace's exactly as they were (ids,
        statuses, change ids; ones already stored are skipped), another namespace's as
        copies (see the module docstring). Returns the records written."""
        own = [e.model_copy(update={"namespace": self.namespace}) for e in edits if self._is_own(e)]
        if len({e.id for e in own}) != len(own):
            raise ValidationError("the file holds the same edit id twice")
        with self._lock:
            stored = self._by_ids(e.id for e in own)
            self._refuse_clashes(own, stored)
            fresh = [e for e in own if e.id not in stored]
        written = self._write(fresh, link=False, progress=progress)
        copies = self._copies([e for e in edits if not self._is_own(e)])
        return written + self._write(copies, link=True, progress=progress)

    def _refuse_clashes(
        self, edits: Sequence[Edit], stored: dict[str, Edit], *, made_apart: bool = False
    ) -> None:
        """Refuse an import whose ids are stored with other content (:func:`_same_content`)."""
        clash = [
            e.id
            for e in edits
            if e.id in stored and not _same_content(e, stored[e.id], made_apart=made_apart)
        ]
        if clash:
            raise EditConflictError(
                f"edit id {clash[0]!r} is already taken in namespace {self.namespace!r} "
                f"by another edit ({len(clash)} ids are); nothing was imported"
            )

    def _is_own(self, edit: Edit) -> bool:
        return "namespace" not in edit.model_fields_set or edit.namespace == self.namespace

    def _copies(self, edits: Sequence[Edit]) -> list[Edit]:
        """Another namespace's edits as new records here: fresh ids (supersede links
        followed), ``origin`` naming the source, one new change."""
        change = new_change_id()
        ids = {e.id: new_edit_id() for e in edits}
        return [
            e.model_copy(
                update={
                    "id": ids[e.id],
                    "namespace": self.namespace,
                    "origin": e.origin or record_key(e.namespace, e.id),
                    "change_id": change,
                    "supersedes": ids.get(e.supersedes) if e.supersedes else None,
                    "deleted_change_id": None,
                    "superseded_change_id": change if e.status == "superseded" else None,
                }
            )
            for e in edits
        ]

    def delete(self, edit_id: str) -> Edit:
        """Mark an edit deleted (history keeps it; undo brings it back)."""
        with self._lock:
            edit = self.get(edit_id)
            if edit.status == "deleted":
                raise EditNotFoundError(f"edit {edit_id!r} is already deleted")
            gone = edit.model_copy(
                update={"status": "deleted", "deleted_change_id": new_change_id()}
            )
            self._update([gone])
            self._bump()
            self.graph.remove(edit_id)
            self._active.discard(edit_id)
            return gone

    def undo(self) -> UndoResult:
        """Revert the newest change of this namespace: an add (or import), or a delete."""
        with self._lock:
            edits = self._records()
            adds = {e.change_id for e in edits}
            deletes = {e.deleted_change_id for e in edits if e.deleted_change_id}
            if not adds:
                raise NothingToUndoError(f"nothing to undo in namespace {self.namespace!r}")
            change = max(adds | deletes)
            if change in deletes:
                result = self._undo_delete(
                    change, [e for e in edits if e.deleted_change_id == change]
                )
            else:
                result = self._undo_add(change, edits)
                if result.removed:  # records gone leave nothing for a catch-up to read
                    self._stamps.write(self._removal_stamp, new_change_id())
            self._bump()
            self.sync(full=True)
            return result

    def _undo_delete(self, change: str, edits: list[Edit]) -> UndoResult:
        back = [e.model_copy(update={"status": "active", "deleted_change_id": None}) for e in edits]
        out, demoted = self._resolve_supersedes(back, link=False)
        self._update(out)  # revived first: a crash before the demotion leaves a duplicate
        self._update(demoted)
        return UndoResult(change, "delete", (), tuple(e.id for e in out))

    def _undo_add(self, change: str, edits: list[Edit]) -> UndoResult:
        added = [e for e in edits if e.change_id == change]
        added_ids = {e.id for e in added}
        legacy = {e.supersedes for e in added if e.supersedes} - added_ids  # schema 1 links
        revived = [
            e.model_copy(update={"status": "active", "superseded_change_id": None})
            for e in edits
            if e.status == "superseded"
            and e.id not in added_ids
            and (
                e.superseded_change_id == change
                or (e.superseded_change_id is None and e.id in legacy)
            )
        ]
        self._update(revived)  # revived first: a crash before the delete is repaired away
        self._remove([e.id for e in added])
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
        edits = read_edits(path, fmt, limit, keyed=True)
        return self.import_edits(edits, fmt, progress=progress)

    def import_edits(
        self, edits: Sequence[Edit], fmt: Format, *, progress: Progress | None = None
    ) -> list[Edit]:
        """Store edits read from a file of format ``fmt``: JSONL is restored (see
        :meth:`restore`); the public formats are added as one new change, which a re-run
        of an interrupted import finishes (see :meth:`resume_import`)."""
        if fmt == "jsonl":
            return self.restore(edits, progress=progress)
        if all("id" in e.model_fields_set for e in edits):
            return self.resume_import(edits, progress=progress)
        return self.add_many(edits, progress=progress)

    def resume_import(
        self, edits: Sequence[Edit], *, progress: Progress | None = None
    ) -> list[Edit]:
        """Add edits whose ids the file they come from decides (``read_edits(...,
        keyed=True)``) as one change: those an earlier run of the same import wrote (the
        same ids, the same facts) are skipped and the rest joins that run's change, so a
        crashed import re-run ends as if it had never stopped, with no duplicates, and one
        undo removes it all (a finished one re-run writes nothing). Returns the records
        written by this run."""
        with self._lock:
            stored: dict[str, Edit] = {}
            for chunk in _chunks(edits, _IDS):
                found = self._by_ids(e.id for e in chunk)
                stored.update(found)
                if len(found) < len(chunk):  # writes go in file order: the rest is new
                    break
            self._refuse_clashes(edits, stored, made_apart=True)
            rest = [e for e in edits if e.id not in stored]
            change = stored[edits[0].id].change_id if edits and edits[0].id in stored else None
        if stored and progress is not None:
            progress(len(edits) - len(rest))
        if not rest:
            return []
        if change is not None:
            log.info("import %s resumed: %d of %d written before", change, len(stored), len(edits))
        fresh = self._as_change(rest, change or new_change_id())
        return self._write(fresh, link=True, progress=progress, checked=True)

    def export(self, path: Path) -> int:
        """Write every edit of the namespace, all statuses, oldest first, as JSONL."""
        return write_jsonl(self.edits(status=None), path)
