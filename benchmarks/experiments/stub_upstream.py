"""A tiny OpenAI-compatible upstream for the proxy benchmark: fixed answers, no model.

    .venv/bin/python benchmarks/experiments/stub_upstream.py --port 8101

Answers ``/v1/models``, ``/v1/chat/completions`` and ``/v1/completions`` (``stream``
too) at once, so that what the benchmark measures through the proxy is the proxy.

Started by ``proxy_bench.py`` (result: ``results/proxy-2026-12-01.{json,md}``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ANSWER = " Paris"


def _completion(body: dict[str, Any], chat: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": ANSWER.strip()}
    else:
        choice["text"] = ANSWER
    return {
        "id": "stub-1",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": [choice],
        "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
    }


def _chunks(body: dict[str, Any], chat: bool) -> Iterator[bytes]:
    whole = _completion(body, chat)
    choice = whole["choices"][0]
    piece = (
        {"delta": {"role": "assistant", "content": ANSWER.strip()}} if chat else {"text": ANSWER}
    )
    kind = "chat.completion.chunk" if chat else "text_completion"
    first = {**whole, "object": kind, "choices": [{"index": 0, "finish_reason": None, **piece}]}
    last = {**whole, "object": kind, "choices": [{**choice, "delta": {}} if chat else choice]}
    for event in (first, last):
        yield b"data: " + json.dumps(event).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


async def _answer(request: Request, chat: bool) -> Response:
    body = json.loads(await request.body())
    if body.get("stream"):
        return StreamingResponse(_chunks(body, chat), media_type="text/event-stream")
    return JSONResponse(_completion(body, chat))


async def chat(request: Request) -> Response:
    return await _answer(request, chat=True)


async def completions(request: Request) -> Response:
    return await _answer(request, chat=False)


async def models(_: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": "stub", "object": "model"}]})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", models),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
