"""One namespace's edits and editor per tenant, kept fresh against a shared store.

Several proxy processes may share one Chroma server. Search always reads Chroma, but
the fact graph (which finds every edit whose subject a query names) lives in each
process. So every ``refresh_interval_s`` each :class:`Tenant` reads a cheap change
signal — the collection's record count and the ids of its namespace's deleted edits,
~10 ms at 10,000 edits where listing every active id costs ~40 ms — and when it moved,
compares the active ids with the ones it knows and applies the difference to its graph:
new edits are fetched and added, edits deleted or superseded elsewhere are removed.
Every ``FULL_EVERY`` polls the ids are compared anyway, for the changes the signal cannot
see (an add and an undo of another add between two polls).

Planning reads the graph while a refresh or an admin write changes it, so they share a
readers-writer lock: plans run side by side, changes run alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from kme_rag.backends import Backend, Message
from kme_rag.editor import Answer, KnowledgeEditor, Plan
from kme_rag.errors import StoreError
from kme_rag.memory.edit import Edit
from kme_rag.memory.store import EditMemory
from kme_rag.multihop.walk import GraphWalker
from kme_rag.scope.base import ScopeModel

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

__all__ = [
    "FULL_EVERY",
    "ReadWriteLock",
    "Signal",
    "Tenant",
    "Tenants",
    "active_ids",
    "change_signal",
    "record_count",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
FULL_EVERY = 20
Signal = tuple[int, frozenset[str]]


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds new readers back."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and not self._waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._writing and not self._readers)
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def active_ids(collection: Collection, namespace: str) -> set[str]:
    """The ids of the namespace's active edits, read from Chroma (ids only)."""
    return _ids(collection, {"$and": [{"namespace": namespace}, {"status": "active"}]})


def _ids(collection: Collection, where: dict[str, Any]) -> set[str]:
    try:
        return set(collection.get(where=where, include=[])["ids"])
    except Exception as exc:
        raise StoreError(f"reading the edit store failed: {exc}") from exc


def record_count(collection: Collection) -> int:
    try:
        return int(collection.count())
    except Exception as exc:
        raise StoreError(f"reading the edit store failed: {exc}") from exc


def change_signal(collection: Collection, namespace: str, count: int) -> Signal:
    """What moves when the namespace changes: the record count (adds, undone adds) and
    the deleted edits' ids (deletes, undone deletes)."""
    where = {"$and": [{"namespace": namespace}, {"status": "deleted"}]}
    return count, frozenset(_ids(collection, where))


def _fetch(collection: Collection, ids: Sequence[str]) -> list[Edit]:
    if not ids:
        return []  # Chroma refuses an empty id list
    try:
        got = collection.get(ids=list(ids), include=["metadatas"])
    except Exception as exc:
        raise StoreError(f"reading the edit store failed: {exc}") from exc
    metas = got["metadatas"] or []
    return [Edit.from_metadata(i, dict(m)) for i, m in zip(got["ids"], metas, strict=True) if m]


class Tenant:
    """A namespace: its memory, its editor, and the edits its graph was built from."""

    def __init__(self, memory: EditMemory, editor: KnowledgeEditor, collection: Collection):
        self.memory = memory
        self.editor = editor
        self._collection = collection
        self._lock = ReadWriteLock()
        self._known = active_ids(collection, memory.namespace)
        self._signal = self._current_signal()

    def _current_signal(self) -> Signal:
        return change_signal(self._collection, self.namespace, record_count(self._collection))

    @property
    def namespace(self) -> str:
        return self.memory.namespace

    def plan_chat(self, messages: Sequence[Message], *, native: bool) -> Plan:
        with self._lock.read():
            return self.editor.plan_chat(messages, native=native)

    def plan_completion(self, prompt: str) -> Plan:
        with self._lock.read():
            return self.editor.plan_completion(prompt)

    def walk(self, question: str, plan: Plan) -> Answer | None:
        """The multi-hop answer to ``question`` when the editor walks it (a walker is
        set, the question names edited subjects, and a hop came from an edit)."""
        if self.editor.multihop is None:
            return None
        with self._lock.read():
            # KnowledgeEditor.chat's own routing step, on the plan already made.
            return self.editor.walk(question, plan, time.perf_counter())

    def read(self, action: Callable[[EditMemory], T]) -> T:
        with self._lock.read():
            return action(self.memory)

    def write(self, action: Callable[[EditMemory], T]) -> T:
        """Change the edits (this process's graph follows at once)."""
        with self._lock.write():
            result = action(self.memory)
            self._known = active_ids(self._collection, self.namespace)
            self._signal = self._current_signal()
            return result

    def refresh(self, count: int, *, full: bool = False) -> bool:
        """Apply other processes' changes to the graph; True when there were any.
        ``count`` is the collection's record count now; ``full`` compares ids even
        when the change signal has not moved."""
        signal = change_signal(self._collection, self.namespace, count)
        if signal == self._signal and not full:
            return False
        self._signal = signal
        now = active_ids(self._collection, self.namespace)
        if now == self._known:
            return False
        added = _fetch(self._collection, sorted(now - self._known))
        gone = self._known - now
        with self._lock.write():
            for edit_id in gone:
                self.memory.graph.remove(edit_id)
            for edit in sorted(added, key=lambda e: e.change_id):
                self.memory.graph.add(edit)
            self._known = now
        log.info("namespace %r: %d edits arrived, %d left", self.namespace, len(added), len(gone))
        return True


class Tenants:
    """The tenants opened so far (the ``max_open`` most recently used), and the poll
    that keeps them fresh."""

    def __init__(
        self,
        base: EditMemory,
        collection: Collection,
        backend: Backend,
        scope: ScopeModel,
        *,
        walker: Callable[[Backend, EditMemory], GraphWalker] | None = None,
        max_open: int = 32,
    ) -> None:
        self._base = base
        self._collection = collection
        self._backend = backend
        self._scope = scope
        self._walker = walker
        self._max_open = max_open
        self._open: OrderedDict[str, Tenant] = OrderedDict()
        self._opening = asyncio.Lock()

    def _build(self, namespace: str) -> Tenant:
        memory = self._base if namespace == self._base.namespace else None
        memory = memory or self._base.with_namespace(namespace)
        walker = self._walker(self._backend, memory) if self._walker else None
        editor = KnowledgeEditor(self._backend, memory, scope=self._scope, multihop=walker)
        return Tenant(memory, editor, self._collection)

    async def get(self, namespace: str) -> Tenant:
        """The tenant of ``namespace``, opened on first use."""
        tenant = self._open.get(namespace)
        if tenant is None:
            async with self._opening:
                tenant = self._open.get(namespace)
                if tenant is None:
                    tenant = await asyncio.to_thread(self._build, namespace)
                    self._open[namespace] = tenant
        self._open.move_to_end(namespace)
        while len(self._open) > self._max_open:
            self._open.popitem(last=False)
        return tenant

    def refresh(self, tenants: Sequence[Tenant], *, full: bool = False) -> None:
        """Refresh ``tenants`` (taken on the event loop: ``_open`` changes only there)."""
        try:
            count = record_count(self._collection)
            for tenant in tenants:
                tenant.refresh(count, full=full)
        except StoreError as exc:
            log.warning("could not check the store for changes: %s", exc)

    async def poll(self, interval_s: float) -> None:
        """Refresh every open tenant every ``interval_s`` (runs until cancelled)."""
        rounds = 0
        while True:
            await asyncio.sleep(interval_s)
            rounds += 1
            tenants = list(self._open.values())
            await asyncio.to_thread(self.refresh, tenants, full=rounds % FULL_EVERY == 0)
