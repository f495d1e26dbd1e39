"""Every failure as an OpenAI-style ``{"error": {"message", "type", "code"}}`` body with
the status its :class:`~kme_rag.errors.KmeError` class carries; never a traceback.

Also two guards, as ASGI middleware that answers before any handler runs: the body-size
limit reads at most ``limit + 1`` bytes of a request (whatever its ``Content-Length``
says) and answers 413 above the limit; :class:`LoopbackOnly`, for an app with no keys
configured, answers 403 to every client that is not on this machine.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kme_rag.errors import (
    KmeError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ValidationError,
)
from kme_rag.server.auth import loopback_client

__all__ = [
    "BodyLimit",
    "LoopbackOnly",
    "error_response",
    "install_error_handlers",
    "validation_message",
]

log = logging.getLogger(__name__)


def error_response(error: KmeError, status: int | None = None) -> JSONResponse:
    return JSONResponse(error.to_openai(), status_code=status or error.status_code)


def validation_message(errors: Sequence[Any]) -> str:
    """One line naming the first bad field and why: ``invalid request
    (body.max_tokens): Input should be a valid integer, got '8'``."""
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON: {first.get('ctx', {}).get('error', '')}"
    if tuple(first.get("loc", ())) == ("body",) and isinstance(first.get("input"), bytes):
        return "expected a JSON object as the body, sent with Content-Type: application/json"
    shown = "" if "input" not in first else f", got {json.dumps(first['input'], default=str)[:80]}"
    return f"invalid request ({where}): {message}{shown}"


async def _kme(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KmeError)
    if exc.status_code >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.message)
    return error_response(exc)


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, (RequestValidationError, pydantic.ValidationError))
    return error_response(ValidationError(validation_message(exc.errors())))


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    error: KmeError = (
        NotFoundError(str(exc.detail))
        if exc.status_code == 404
        else ValidationError(str(exc.detail))
    )
    return error_response(error, exc.status_code)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(KmeError("internal error: the proxy failed; see its log"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KmeError, _kme)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(pydantic.ValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


class BodyLimit:
    """Reject request bodies over ``limit`` bytes with 413, before any handler runs."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        body = (
            None if declared.isdigit() and int(declared) > self.limit else await self._read(receive)
        )
        if body is None:
            too_large = PayloadTooLargeError(
                f"the request body is over the limit of {self.limit} bytes"
            )
            await error_response(too_large)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(parts)  # disconnected: let the app see an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)


class LoopbackOnly:
    """Answer 403 to any client not on loopback, or not known, before any handler runs:
    an app with no keys configured lets every caller change edits, wherever it listens."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = (scope.get("client") or [None])[0]  # (host, port), or None when unknown
        if scope["type"] != "http" or loopback_client(host):
            await self.app(scope, receive, send)
            return
        refused = PermissionDeniedError(
            "no API keys configured (KME_API_KEYS / KME_ADMIN_KEYS): this proxy answers "
            f"clients on loopback only, not {host or 'an unknown address'}"
        )
        await error_response(refused)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: disconnect notices, as usual

    return replay
