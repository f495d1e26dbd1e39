"""Request and response translation for planned (in-scope) calls. Pure dict → dict.

A pass-through request is never translated: its bytes go upstream as received. A planned
request keeps every option the user sent (unknown ones included) and changes only what
the plan decides: the prompt or messages, and extra stop strings. A chat request to a
base model becomes a completion of the plan's Q/A prompt, and the completion that comes
back is rewritten into the chat-completion shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kme_rag.backends import Message
from kme_rag.server.text import AnswerText, shape_answer, stop_list

__all__ = [
    "MAX_UPSTREAM_STOPS",
    "ChunkRewriter",
    "all_stops",
    "answer_chunks",
    "answer_completion",
    "chat_as_completion",
    "chat_from_completion",
    "editor_messages",
    "planned_completion",
    "planned_messages",
    "prompt_text",
    "rewrite_completion",
]

MAX_UPSTREAM_STOPS = 4  # the OpenAI API's limit; every stop is applied here anyway
# Chat-only fields a completion request does not take.
_CHAT_ONLY = frozenset(
    {
        "messages",
        "response_format",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "parallel_tool_calls",
        "logprobs",
        "top_logprobs",
        "max_completion_tokens",
        "modalities",
        "audio",
        "prediction",
        "reasoning_effort",
        "web_search_options",
    }
)
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _text(content: Any) -> str:
    """A message's text: the string, or the text parts of a content list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def editor_messages(messages: Sequence[dict[str, Any]]) -> list[Message]:
    """The conversation as the editor reads it: text only, developer as system, tool
    turns left out."""
    out: list[Message] = []
    for message in messages:
        role = _ROLES.get(str(message.get("role")))
        if role is not None:
            out.append({"role": role, "content": _text(message.get("content"))})  # type: ignore[typeddict-item]
    return out


def prompt_text(prompt: Any) -> str | None:
    """The one text prompt of a completion request (``"…"`` or ``["…"]``), else None:
    token ids and batches of prompts are passed through unplanned."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    return None


def all_stops(body: dict[str, Any], plan_stop: Sequence[str]) -> list[str]:
    """The plan's stop strings, then the user's, each once."""
    return list(dict.fromkeys([*plan_stop, *stop_list(body.get("stop"))]))


def planned_completion(
    body: dict[str, Any], prompt: str, plan_stop: Sequence[str]
) -> dict[str, Any]:
    """The completion request to send: the user's options, the plan's prompt, and the
    plan's stop strings ahead of the user's (capped at the API's limit)."""
    out = {**body, "prompt": prompt}
    stops = all_stops(body, plan_stop)
    if stops:
        out["stop"] = stops[:MAX_UPSTREAM_STOPS]
    return out


def chat_as_completion(
    body: dict[str, Any], prompt: str, plan_stop: Sequence[str]
) -> dict[str, Any]:
    """A chat request as the completion of the plan's Q/A prompt, with the user's
    sampling options; ``max_completion_tokens`` becomes ``max_tokens``."""
    out = {k: v for k, v in body.items() if k not in _CHAT_ONLY}
    limit = body.get("max_completion_tokens")
    if limit is not None and "max_tokens" not in body:
        out["max_tokens"] = limit
    return planned_completion(out, prompt, plan_stop)


def planned_messages(
    original: Sequence[dict[str, Any]], read: Sequence[Message], planned: Sequence[Message]
) -> list[Any]:
    """The user's own messages with the plan's added messages (the edits as a system
    message) ahead of them: ``planned`` is ``added + read``."""
    added = list(planned[: len(planned) - len(read)])
    return [*added, *original]


def rewrite_completion(
    response: dict[str, Any], prefill: str, stop: Sequence[str]
) -> dict[str, Any]:
    """A completion response with the prefill written before each choice's text and the
    text cut at the first stop string."""
    choices = []
    for choice in response.get("choices") or []:
        generated = str(choice.get("text") or "")
        text = shape_answer(prefill, generated, stop, strip=False)
        cut = len(text) < len(prefill) + len(generated)
        choices.append({**choice, "text": text, "finish_reason": _finish(choice, cut)})
    return {**response, "choices": choices}


def _finish(choice: dict[str, Any], cut: bool) -> Any:
    return "stop" if cut else choice.get("finish_reason")


def chat_from_completion(
    response: dict[str, Any], prefill: str, stop: Sequence[str]
) -> dict[str, Any]:
    """A completion response in the chat-completion shape (the answer stripped)."""
    choices = []
    for choice in response.get("choices") or []:
        generated = str(choice.get("text") or "")
        cut = len(shape_answer("", generated, stop, strip=False)) < len(generated)
        message = {
            "role": "assistant",
            "content": shape_answer(prefill, generated, stop, strip=True),
        }
        choices.append(
            {
                "index": choice.get("index", 0),
                "message": message,
                "logprobs": None,
                "finish_reason": _finish(choice, cut),
            }
        )
    out = {k: v for k, v in response.items() if k not in ("choices", "object")}
    return {**out, "object": "chat.completion", "choices": choices}


class ChunkRewriter:
    """Rewrites the chunks of a streamed completion: prefill and stop strings per
    choice, and, with ``chat=True``, each chunk in the chat-completion-chunk shape.

    ``rewrite`` returns the chunk to send (None when nothing is left to say in it);
    ``done`` turns True once every one of the ``n`` choices has hit a stop string, when
    the rest of the upstream's stream can be dropped.
    """

    def __init__(self, prefill: str, stop: Sequence[str], *, n: int, chat: bool) -> None:
        self._prefill = prefill
        self._stop = list(stop)
        self._n = n
        self._chat = chat
        self._texts: dict[int, AnswerText] = {}

    @property
    def done(self) -> bool:
        stopped = sum(t.stopped for t in self._texts.values())
        return stopped >= self._n

    def _answer(self, index: int) -> AnswerText:
        if index not in self._texts:
            self._texts[index] = AnswerText(self._prefill, self._stop, strip=self._chat)
        return self._texts[index]

    def _choice(self, choice: dict[str, Any]) -> dict[str, Any] | None:
        index = int(choice.get("index") or 0)
        first = index not in self._texts
        answer = self._answer(index)
        if answer.stopped:
            return None
        finish = choice.get("finish_reason")
        text = answer.feed(str(choice.get("text") or ""))
        if answer.stopped:
            finish = "stop"
        elif finish is not None:
            text += answer.finish()
        if not self._chat:
            return {**choice, "text": text, "finish_reason": finish}
        delta: dict[str, Any] = {"role": "assistant"} if first else {}
        if text or first:
            delta["content"] = text
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    def rewrite(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        raw = chunk.get("choices") or []
        choices = [c for c in (self._choice(c) for c in raw) if c is not None]
        if raw and not choices:
            return None
        out = {**chunk, "choices": choices}
        if self._chat:
            out["object"] = "chat.completion.chunk"
        return out


def answer_completion(text: str, model: Any, n: int, stamp: int) -> dict[str, Any]:
    """A chat completion for an answer the proxy already has (a multi-hop walk's)."""
    message = {"role": "assistant", "content": text}
    choices = [
        {"index": i, "message": message, "logprobs": None, "finish_reason": "stop"}
        for i in range(n)
    ]
    return {
        "id": f"chatcmpl-kme-{stamp}",
        "object": "chat.completion",
        "created": stamp,
        "model": model,
        "choices": choices,
    }


def answer_chunks(text: str, model: Any, n: int, stamp: int) -> list[dict[str, Any]]:
    """The same answer as the chunks of a stream: the text, then the finish."""
    base = {"id": f"chatcmpl-kme-{stamp}", "object": "chat.completion.chunk", "created": stamp}
    first = [
        {"index": i, "delta": {"role": "assistant", "content": text}, "finish_reason": None}
        for i in range(n)
    ]
    last = [{"index": i, "delta": {}, "finish_reason": "stop"} for i in range(n)]
    return [{**base, "model": model, "choices": first}, {**base, "model": model, "choices": last}]
