"""Server-sent events as the OpenAI API streams them: ``data: {json}`` events, then
``data: [DONE]``. Pure functions over bytes and strings, no network.

:class:`EventSplitter` cuts a byte stream into events whatever the chunk boundaries
(servers end lines with ``\\n`` or ``\\r\\n``); :func:`encode_event` writes one.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["DONE", "EventSplitter", "encode_done", "encode_event", "event_data"]

DONE = "[DONE]"
_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def encode_event(payload: dict[str, Any]) -> bytes:
    """One ``data:`` event carrying ``payload`` as compact JSON."""
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n\n"


def encode_done() -> bytes:
    return b"data: [DONE]\n\n"


def event_data(event: bytes) -> str | None:
    """The data of one raw event (its ``data:`` lines joined), or None for a comment or
    an event without data (``: ping``, ``event: x``)."""
    lines = event.decode("utf-8").splitlines()
    data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
    return "\n".join(data) if data else None


class EventSplitter:
    """Feed byte chunks, get back the complete raw events they close (without the blank
    line that ends each); :meth:`rest` is what is left when the stream ends."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        events: list[bytes] = []
        while (match := _BOUNDARY.search(self._buffer)) is not None:
            events.append(self._buffer[: match.start()])
            self._buffer = self._buffer[match.end() :]
        return events

    def rest(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest
