"""One namespace's edits and editor per tenant, kept fresh against a shared store.

Several proxy processes may share one Chroma server. Search always reads Chroma, but
the fact graph (which finds every edit whose subject a query names) lives in each
process. So every ``refresh_interval_s`` the poll calls each open tenant's
:meth:`EditMemory.sync <kme_rag.memory.store.EditMemory.sync>`: one stamp record read,
and the graph brought up to date when the stamp moved (the synchronisation, and its
correctness under concurrent writes, live in ``memory/``). Every ``FULL_EVERY`` polls the
active ids are compared anyway, for a writer that died before bumping the stamp.

Planning and walking read the graph while a sync or an admin write changes it; the
graph locks itself per call, so no tenant lock is held across model calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

from kme_rag.backends import Backend, Message
from kme_rag.editor import Answer, KnowledgeEditor, Plan
from kme_rag.errors import StoreError
from kme_rag.memory.store import EditMemory
from kme_rag.multihop.walk import GraphWalker
from kme_rag.scope.base import ScopeModel

__all__ = ["FULL_EVERY", "Tenant", "Tenants"]

log = logging.getLogger(__name__)
T = TypeVar("T")
FULL_EVERY = 20


class Tenant:
    """A namespace: its memory and its editor."""

    def __init__(self, memory: EditMemory, editor: KnowledgeEditor):
        self.memory = memory
        self.editor = editor

    @property
    def namespace(self) -> str:
        return self.memory.namespace

    def plan_chat(self, messages: Sequence[Message], *, native: bool) -> Plan:
        return self.editor.plan_chat(messages, native=native)

    def plan_completion(self, prompt: str) -> Plan:
        return self.editor.plan_completion(prompt)

    def settle(self, plan: Plan, question: str) -> Answer | Plan:
        """A ``multihop`` plan's walked answer, or the plan to send instead
        (:meth:`KnowledgeEditor.settle`, the editor's own step)."""
        return self.editor.settle(plan, question, time.perf_counter())

    def read(self, action: Callable[[EditMemory], T]) -> T:
        return action(self.memory)

    def write(self, action: Callable[[EditMemory], T]) -> T:
        """Change the edits (this process's graph follows at once)."""
        return action(self.memory)

    def refresh(self, *, full: bool = False) -> bool:
        """Apply other processes' changes to the graph; True when there were any."""
        return self.memory.sync(full=full)


class Tenants:
    """The tenants opened so far (the ``max_open`` most recently used), and the poll
    that keeps them fresh."""

    def __init__(
        self,
        base: EditMemory,
        backend: Backend,
        scope: ScopeModel,
        *,
        walker: Callable[[Backend, EditMemory], GraphWalker] | None = None,
        max_open: int = 32,
    ) -> None:
        self._base = base
        self._backend = backend
        self._scope = scope
        self._walker = walker
        self._max_open = max_open
        self._open: OrderedDict[str, Tenant] = OrderedDict()
        self._opening = asyncio.Lock()

    def _build(self, namespace: str) -> Tenant:
        if namespace == self._base.namespace:
            memory = self._base  # (not `or`: an EditMemory with no edits is falsy)
        else:
            memory = self._base.with_namespace(namespace)
        walker = self._walker(self._backend, memory) if self._walker else None
        editor = KnowledgeEditor(self._backend, memory, scope=self._scope, multihop=walker)
        return Tenant(memory, editor)

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
        for tenant in tenants:
            try:
                tenant.refresh(full=full)
            except StoreError as exc:
                log.warning("could not check namespace %r for changes: %s", tenant.namespace, exc)

    async def poll(self, interval_s: float) -> None:
        """Refresh every open tenant every ``interval_s`` (runs until cancelled)."""
        rounds = 0
        while True:
            await asyncio.sleep(interval_s)
            rounds += 1
            tenants = list(self._open.values())
            await asyncio.to_thread(self.refresh, tenants, full=rounds % FULL_EVERY == 0)
