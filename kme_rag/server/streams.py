"""Streams the proxy passes on: the upstream's bytes as they arrive, with the ``kme``
event inserted before ``data: [DONE]`` when asked, or a streamed completion rewritten
chunk by chunk (prefill, stop strings, the chat shape). A failure once the status line
has gone out becomes an OpenAI-style SSE error event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from kme_rag.errors import BackendError, KmeError
from kme_rag.server.sse import DONE, EventSplitter, encode_done, encode_event, event_data
from kme_rag.server.translate import ChunkRewriter

__all__ = ["Chunks", "guarded", "kme_before_done", "rewritten", "upstream_json"]

log = logging.getLogger(__name__)
Chunks = AsyncGenerator[bytes, None]


def upstream_json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise BackendError(f"the upstream answered with something other than JSON: {raw[:80]!r}")
    return data


async def guarded(events: Chunks) -> Chunks:
    """A stream whose failure, once the status line has gone, is an SSE error event."""
    try:
        async for event in events:
            yield event
    except KmeError as exc:
        log.warning("stream broken: %s", exc.message)
        yield encode_event(exc.to_openai())


async def kme_before_done(chunks: Chunks, extra: bytes) -> Chunks:
    """The upstream's events, with ``extra`` inserted before ``data: [DONE]``."""
    splitter, sent = EventSplitter(), False
    async with aclosing(chunks) as source:
        async for piece in source:
            for event in splitter.feed(piece):
                if event_data(event) == DONE and not sent:
                    yield extra
                    sent = True
                yield event + b"\n\n"
    rest = splitter.rest()
    if not sent:
        yield extra
    if rest:
        yield rest


async def rewritten(
    chunks: Chunks, rewriter: ChunkRewriter, extra: dict[str, Any] | None
) -> Chunks:
    """A streamed completion rewritten chunk by chunk; the upstream is dropped once
    every choice has hit a stop string."""
    splitter = EventSplitter()
    async with aclosing(chunks) as source:
        async for piece in source:
            for event in splitter.feed(piece):
                data = event_data(event)
                if data is None or data == DONE:
                    continue
                out = rewriter.rewrite(upstream_json(data.encode("utf-8")))
                if out is not None:
                    yield encode_event(out)
            if rewriter.done:
                break
    if extra is not None:
        yield encode_event(extra)
    yield encode_done()
