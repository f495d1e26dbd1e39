"""``create_app(settings)``: the editing proxy as an ASGI app, built from settings alone.

Everything the app holds lives on ``app.state.proxy`` (no module state): the upstream
client, the tenants (one per namespace) and the poll that keeps them fresh, which the
app's lifespan starts and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING

from fastapi import FastAPI

from kme_rag.backends import Backend, LlamaCppBackend, OpenAIBackend
from kme_rag.memory.store import EditMemory
from kme_rag.scope.classifier import TrainedScope
from kme_rag.server.auth import open_access
from kme_rag.server.failures import BodyLimit, LoopbackOnly, install_error_handlers
from kme_rag.server.proxy import Proxy
from kme_rag.server.routes import router
from kme_rag.server.tenants import Tenants
from kme_rag.server.upstream import Upstream
from kme_rag.settings import Settings

if TYPE_CHECKING:
    from kme_rag.memory.embedder import Embedder

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _native_chat(settings: Settings) -> bool:
    """Whether in-scope chat goes upstream as chat (True) or as a Q/A completion."""
    if settings.upstream_framing != "auto":
        return settings.upstream_framing == "chat"
    if settings.upstream_url:
        return True
    from kme_rag.server.local import local_has_chat_template

    return local_has_chat_template(settings)


def _backend(settings: Settings, native: bool) -> Backend:
    """The editor's backend. Planning never calls it; it names the model the plans are
    for (the upstream, or the local model)."""
    if settings.upstream_url:
        return OpenAIBackend.connect(
            settings.upstream_url,
            api_key=settings.upstream_api_key,
            timeout_s=settings.upstream_timeout_s,
            framing="chat" if native else "qa",
        )
    return LlamaCppBackend(
        settings.model_path, n_ctx=settings.n_ctx, framing="auto" if native else "qa"
    )


def _proxy(settings: Settings, upstream: Upstream | None, embedder: Embedder | None) -> Proxy:
    native = _native_chat(settings)
    base = EditMemory.open(settings, embedder=embedder)
    walker = None
    if settings.serve_multihop:
        from kme_rag.multihop.walk import build_walker

        walker = partial(build_walker, settings)
    backend, scope = _backend(settings, native), TrainedScope(base.embedder)
    tenants = Tenants(base, backend, scope, walker=walker)
    if upstream is None and settings.upstream_url:
        upstream = Upstream.remote(
            settings.upstream_url,
            api_key=settings.upstream_api_key,
            timeout_s=settings.upstream_timeout_s,
        )
    return Proxy(settings, upstream or Upstream.local(settings), tenants, native_chat=native)


def create_app(
    settings: Settings, *, upstream: Upstream | None = None, embedder: Embedder | None = None
) -> FastAPI:
    """The proxy for ``settings``: upstream from ``settings.upstream_url`` (else the
    local model in-process), edits from the store the settings name. ``upstream`` and
    ``embedder`` may be given to share them (tests, benchmarks). With no keys configured
    it answers loopback clients only, however it is served."""
    proxy = _proxy(settings, upstream, embedder)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        poll = asyncio.create_task(proxy.tenants.poll(settings.refresh_interval_s))
        try:
            yield
        finally:
            poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poll
            await proxy.upstream.aclose()

    app = FastAPI(
        title="kme_rag editing proxy",
        summary="OpenAI-compatible: answers with the stored edits applied.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.proxy = proxy
    app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if open_access(settings):  # added last, so it runs first: before the body is read
        app.add_middleware(LoopbackOnly)
    return app
