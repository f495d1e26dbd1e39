"""One OpenAI request through the editor to the upstream, and the answer back.

Out of scope the request's own bytes go upstream and the upstream's bytes come back
(streamed as they arrive when ``stream`` is set). In scope, the plan decides what goes
upstream: the user's messages with the edits as a system message (chat models), or the
plan's IKE prompt as a completion with the new object prefilled (completions, and chat
on base models, whose answer is rewritten into the chat shape). Every answer carries
``x-kme-route``, ``x-kme-edits`` (comma-separated ids) and ``x-kme-namespace``; with
``"kme": true`` in the request the body carries the same as its ``kme`` field.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from kme_rag.backends import Message
from kme_rag.editor import Answer, Plan
from kme_rag.memory.edit import Edit
from kme_rag.server.auth import open_access
from kme_rag.server.sse import encode_done, encode_event
from kme_rag.server.streams import guarded, kme_before_done, rewritten, upstream_json
from kme_rag.server.tenants import Tenant, Tenants
from kme_rag.server.translate import (
    ChunkRewriter,
    all_stops,
    answer_chunks,
    answer_completion,
    chat_as_completion,
    chat_from_completion,
    editor_messages,
    planned_completion,
    planned_messages,
    prompt_text,
    rewrite_completion,
)
from kme_rag.server.upstream import Upstream, forward_headers, response_headers
from kme_rag.settings import Settings

__all__ = ["Outcome", "Proxy"]


@dataclass(frozen=True)
class Outcome:
    """How a request was answered: its route, its namespace and the edits it used."""

    route: str
    namespace: str
    edits: tuple[Edit, ...] = ()
    timings_ms: tuple[tuple[str, float], ...] = ()
    question: str = ""  # a follow-up turn as the editor resolved it

    @classmethod
    def of(cls, plan: Plan | None, namespace: str) -> Outcome:
        if plan is None:
            return cls("passthrough", namespace)
        timings = tuple((k.removesuffix("_ms"), v) for k, v in plan.timings_ms.items())
        return cls(plan.route, namespace, plan.edits, timings, plan.question)

    def headers(self) -> dict[str, str]:
        """``x-kme-*``, and the editor's steps as a standard ``server-timing`` header
        (``retrieve;dur=7.1, scope;dur=4.9``)."""
        headers = {
            "x-kme-route": self.route,
            "x-kme-edits": ",".join(e.id for e in self.edits),
            "x-kme-namespace": self.namespace,
        }
        if self.timings_ms:
            steps = (f"{name};dur={ms:.1f}" for name, ms in self.timings_ms)
            headers["server-timing"] = ", ".join(steps)
        return headers

    def info(self) -> dict[str, Any]:
        edits = [{"id": e.id, "statement": e.statement} for e in self.edits]
        info = {"route": self.route, "namespace": self.namespace, "edits": edits}
        return {**info, "question": self.question} if self.question else info


def _json_object(raw: bytes) -> dict[str, Any]:
    data = json.loads(raw)  # already parsed and checked once by the route's model
    assert isinstance(data, dict)
    return data


def _hops(answer: Answer) -> list[dict[str, Any]]:
    return [{"question": h.question, "answer": h.answer, "source": h.origin} for h in answer.hops]


def _kme_chunk(outcome: Outcome, kind: str, model: Any) -> dict[str, Any]:
    """The stream event that carries the ``kme`` field: a chunk without choices."""
    stamp = int(time.time())
    return {
        "id": "kme",
        "object": kind,
        "created": stamp,
        "model": model,
        "choices": [],
        "kme": outcome.info(),
    }


class Proxy:
    """The proxy's working parts: settings, upstream, tenants, and how chat goes upstream."""

    def __init__(
        self, settings: Settings, upstream: Upstream, tenants: Tenants, *, native_chat: bool
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.tenants = tenants
        self.native_chat = native_chat

    def _headers(self, request: Request) -> dict[str, str]:
        return forward_headers(
            request.headers,
            api_key=self.upstream.api_key,
            pass_authorization=open_access(self.settings),
        )

    async def relay(
        self,
        request: Request,
        path: str,
        content: bytes | None,
        outcome: Outcome | None,
        *,
        stream: bool = False,
        kme: dict[str, Any] | None = None,
    ) -> Response:
        """Send ``content`` upstream and pass the answer back as it is (with the
        ``kme`` field or event added when asked)."""
        method = "GET" if content is None else "POST"
        response = await self.upstream.open(
            method, path, content=content, headers=self._headers(request)
        )
        headers = {**response_headers(response.headers), **(outcome.headers() if outcome else {})}
        status = response.status_code
        if not stream or status >= 400:
            body = await self.upstream.read(response)
            if kme is not None and status < 400 and outcome is not None:
                body = json.dumps({**upstream_json(body), "kme": outcome.info()}).encode()
            return Response(body, status_code=status, headers=headers)
        events = self.upstream.chunks(response)
        if kme is not None:
            events = kme_before_done(events, encode_event(kme))
        return StreamingResponse(guarded(events), status_code=status, headers=headers)

    async def _planned(
        self,
        request: Request,
        payload: dict[str, Any],
        plan: Plan,
        outcome: Outcome,
        *,
        stops: Sequence[str],
        chat: bool,
        want_kme: bool,
    ) -> Response:
        """Send the plan's completion upstream; rewrite the answer (prefill, stops, and
        the chat shape for chat requests)."""
        content = json.dumps(payload).encode()
        response = await self.upstream.open(
            "POST", "completions", content=content, headers=self._headers(request)
        )
        headers = outcome.headers()
        if response.status_code >= 400:
            body = await self.upstream.read(response)
            passed = {**response_headers(response.headers), **headers}
            return Response(body, status_code=response.status_code, headers=passed)
        if not payload.get("stream"):
            data = upstream_json(await self.upstream.read(response))
            shape = chat_from_completion if chat else rewrite_completion
            out = shape(data, plan.prefill, stops)
            if want_kme:
                out["kme"] = outcome.info()
            return JSONResponse(out, headers=headers)
        rewriter = ChunkRewriter(plan.prefill, stops, n=int(payload.get("n") or 1), chat=chat)
        kind = "chat.completion.chunk" if chat else "text_completion"
        extra = _kme_chunk(outcome, kind, payload.get("model")) if want_kme else None
        events = rewritten(self.upstream.chunks(response), rewriter, extra)
        return StreamingResponse(guarded(events), media_type="text/event-stream", headers=headers)

    async def _plan_chat(self, tenant: Tenant, read: list[Message]) -> Plan | None:
        if not read or read[-1]["role"] != "user" or not read[-1]["content"].strip():
            return None  # nothing the editor answers: the upstream's turn, untouched
        return await asyncio.to_thread(tenant.plan_chat, read, native=self.native_chat)

    async def chat(self, request: Request, tenant: Tenant) -> Response:
        """``POST /v1/chat/completions`` through the editor."""
        raw = await request.body()
        data = _json_object(raw)
        sent = raw if "kme" not in data else None  # the kme field never goes upstream
        want_kme = bool(data.pop("kme", False))
        sent = sent or json.dumps(data).encode()
        read = editor_messages(data["messages"])
        plan = await self._plan_chat(tenant, read)
        if plan is not None:
            settled = await asyncio.to_thread(tenant.settle, plan, read[-1]["content"])
            if isinstance(settled, Answer):
                return self._walked(settled, tenant, data, want_kme)
            plan = settled
        outcome = Outcome.of(plan, tenant.namespace)
        stream = bool(data.get("stream"))
        kme = _kme_chunk(outcome, "chat.completion.chunk", data.get("model")) if want_kme else None
        if plan is None or plan.route == "passthrough":
            return await self.relay(
                request, "chat/completions", sent, outcome, stream=stream, kme=kme
            )
        if plan.messages is not None:
            data["messages"] = planned_messages(data["messages"], read, plan.messages)
            content = json.dumps(data).encode()
            return await self.relay(
                request, "chat/completions", content, outcome, stream=stream, kme=kme
            )
        assert plan.prompt is not None
        payload = chat_as_completion(data, plan.prompt, plan.stop)
        stops = all_stops(data, plan.stop)
        return await self._planned(
            request, payload, plan, outcome, stops=stops, chat=True, want_kme=want_kme
        )

    @staticmethod
    def _walked(answer: Answer, tenant: Tenant, data: dict[str, Any], want_kme: bool) -> Response:
        """The multi-hop walk's answer, in the chat shape (streamed when asked)."""
        timings = tuple((k.removesuffix("_ms"), v) for k, v in answer.timings_ms.items())
        outcome = Outcome("multihop", tenant.namespace, answer.edits, timings, answer.question)
        model, n, stamp = data.get("model"), int(data.get("n") or 1), int(time.time())
        if not data.get("stream"):
            body = answer_completion(answer.text, model, n, stamp)
            if want_kme:
                body["kme"] = {**outcome.info(), "hops": _hops(answer)}
            return JSONResponse(body, headers=outcome.headers())
        chunks = answer_chunks(answer.text, model, n, stamp)
        if want_kme:
            extra = _kme_chunk(outcome, "chat.completion.chunk", model)
            chunks.append({**extra, "kme": {**extra["kme"], "hops": _hops(answer)}})
        events = [encode_event(c) for c in chunks] + [encode_done()]
        return StreamingResponse(
            iter(events), media_type="text/event-stream", headers=outcome.headers()
        )

    async def completion(self, request: Request, tenant: Tenant) -> Response:
        """``POST /v1/completions`` through the editor."""
        raw = await request.body()
        data = _json_object(raw)
        sent = raw if "kme" not in data else None  # the kme field never goes upstream
        want_kme = bool(data.pop("kme", False))
        sent = sent or json.dumps(data).encode()
        text = prompt_text(data.get("prompt"))
        plan = None
        if text is not None and text.strip():
            plan = await asyncio.to_thread(tenant.plan_completion, text)
        outcome = Outcome.of(plan, tenant.namespace)
        stream = bool(data.get("stream"))
        if plan is None or plan.route == "passthrough" or plan.prompt is None:
            kme = _kme_chunk(outcome, "text_completion", data.get("model")) if want_kme else None
            return await self.relay(request, "completions", sent, outcome, stream=stream, kme=kme)
        payload = planned_completion(data, plan.prompt, plan.stop)
        stops = all_stops(data, plan.stop)
        return await self._planned(
            request, payload, plan, outcome, stops=stops, chat=False, want_kme=want_kme
        )

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``: the upstream's list, as it is."""
        return await self.relay(request, "models", None, None)
