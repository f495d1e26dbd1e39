"""The OpenAI-compatible editing proxy: any OpenAI client gets edit-aware answers by
pointing its ``base_url`` here.

- ``app.py``: :func:`create_app` (settings → ASGI app, no module state)
- ``routes.py``: the HTTP surface (completions, chat, models, the edit admin API, health)
- ``proxy.py``: one request through the editor to the upstream and back
- ``translate.py``, ``text.py``, ``sse.py``: the pure parts (request and response
  rewriting, prefill and stop strings on streams, server-sent events)
- ``streams.py``: the streams passed on (the ``kme`` event, rewritten completions)
- ``schemas.py``: the request and response bodies the OpenAPI schema documents
- ``upstream.py``, ``local.py``: the upstream over HTTP, or llama.cpp's app in-process
- ``tenants.py``: one namespace per tenant, kept fresh against a shared Chroma server
- ``auth.py``, ``failures.py``: bearer keys; OpenAI-style errors and the body limit
- ``cli.py``: ``kme serve``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kme_rag.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    """``create_app`` is imported on first use, so ``kme`` starts without the web stack."""
    if name == "create_app":
        from kme_rag.extras import require

        require("fastapi", "kme_rag.server.create_app")
        require("uvicorn", "kme_rag.server.create_app")
        from kme_rag.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
