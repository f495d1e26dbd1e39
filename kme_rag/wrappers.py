"""Keep your own client: ``wrap(client, editor)`` returns the same surface, edit-aware.

- ``openai.OpenAI`` / ``openai.AsyncOpenAI``: ``chat.completions.create`` (streaming
  too) plans the call through the editor and sends it with the *user's* options through
  the user's client; every other attribute is the client's own.
- ``llama_cpp.Llama``: ``create_completion`` and ``create_chat_completion`` the same way.
  A base model without a chat template gets in-scope chat turns as a Q/A-framed
  completion with the new object prefilled, returned in the chat-completion shape.

Out of scope the original call is made unchanged, so its answer is the unedited one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from kme_rag.backends import Message
from kme_rag.editor import Answer, KnowledgeEditor, Plan
from kme_rag.errors import ValidationError

__all__ = ["EditedAsyncOpenAI", "EditedLlama", "EditedOpenAI", "wrap"]


def _messages(messages: Sequence[Any]) -> list[Message]:
    return [dict(m) for m in messages]  # type: ignore[misc]


class _ChatCompletions:
    def __init__(self, client: Any, editor: KnowledgeEditor) -> None:
        self._client = client
        self._editor = editor

    def _settle(self, messages: Sequence[Any]) -> Answer | Plan:
        read = _messages(messages)
        plan = self._editor.plan_chat(read, native=True)
        return self._editor.settle(plan, read[-1]["content"])

    def create(self, *, messages: Sequence[Any], **options: Any) -> Any:
        settled = self._settle(messages)
        if isinstance(settled, Answer):
            return _openai_answer(settled.text, options)
        sent = messages if settled.route == "passthrough" else settled.messages
        return self._client.chat.completions.create(messages=sent, **options)


class _AsyncChatCompletions(_ChatCompletions):
    async def create(self, *, messages: Sequence[Any], **options: Any) -> Any:
        settled = await asyncio.to_thread(self._settle, messages)
        if isinstance(settled, Answer):
            answer = _openai_answer(settled.text, options)
            return _async_iter(answer) if options.get("stream") else answer
        sent = messages if settled.route == "passthrough" else settled.messages
        return await self._client.chat.completions.create(messages=sent, **options)


def _openai_answer(text: str, options: dict[str, Any]) -> Any:
    """An answer the editor already has (a multi-hop walk's) as the openai SDK's
    ``ChatCompletion``, or an iterator of ``ChatCompletionChunk`` when streaming."""
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    model = str(options.get("model", ""))
    if options.get("stream"):
        return iter([ChatCompletionChunk.model_validate(c) for c in _chat_chunks(text, model)])
    return ChatCompletion.model_validate(_chat_response(text, model))


async def _async_iter(items: Iterator[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class _Namespace:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


class EditedOpenAI:
    """An ``openai.OpenAI`` whose chat completions see the stored edits."""

    _completions_type: type[_ChatCompletions] = _ChatCompletions

    def __init__(self, client: Any, editor: KnowledgeEditor) -> None:
        self._client = client
        self.chat = _Namespace(completions=self._completions_type(client, editor))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class EditedAsyncOpenAI(EditedOpenAI):
    """The same for ``openai.AsyncOpenAI``."""

    _completions_type = _AsyncChatCompletions


def _chat_response(text: str, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }


def _chat_chunks(text: str, model: str) -> Iterator[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    yield {
        **base,
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}
        ],
    }
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


class EditedLlama:
    """A ``llama_cpp.Llama`` whose completions and chat completions see the stored edits."""

    def __init__(self, llama: Any, editor: KnowledgeEditor) -> None:
        self._llama = llama
        self._editor = editor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    @property
    def _native(self) -> bool:
        return "tokenizer.chat_template" in self._llama.metadata

    def _complete_plan(self, plan: Plan, options: dict[str, Any]) -> Any:
        assert plan.prompt is not None
        stop = options.pop("stop", None) or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        result = self._llama.create_completion(plan.prompt, stop=[*stop, *plan.stop], **options)
        if options.get("stream"):
            return self._prefixed_stream(plan.prefill, result)
        result["choices"][0]["text"] = plan.prefill + result["choices"][0]["text"]
        return result

    @staticmethod
    def _prefixed_stream(prefill: str, stream: Iterator[Any]) -> Iterator[Any]:
        first = True
        for chunk in stream:
            if first and prefill:
                chunk["choices"][0]["text"] = prefill + chunk["choices"][0]["text"]
            first = False
            yield chunk

    def create_completion(self, prompt: str, **options: Any) -> Any:
        if not isinstance(prompt, str):
            raise ValidationError("edit-aware completion needs a text prompt, not token ids")
        plan = self._editor.plan_completion(prompt)
        if plan.route == "passthrough":
            return self._llama.create_completion(prompt, **options)
        return self._complete_plan(plan, options)

    def create_chat_completion(self, messages: Sequence[Any], **options: Any) -> Any:
        read = _messages(messages)
        plan = self._editor.settle(
            self._editor.plan_chat(read, native=self._native), read[-1]["content"]
        )
        if isinstance(plan, Answer):
            model = str(self._llama.model_path)
            stream = bool(options.get("stream"))
            return _chat_chunks(plan.text, model) if stream else _chat_response(plan.text, model)
        if plan.route == "passthrough":
            return self._llama.create_chat_completion(messages=messages, **options)
        if plan.messages is not None:
            return self._llama.create_chat_completion(messages=plan.messages, **options)
        stream = bool(options.pop("stream", False))
        completion_options = {k: v for k, v in options.items() if k != "response_format"}
        result = self._complete_plan(plan, completion_options)
        text = result["choices"][0]["text"].strip()
        model = result.get("model", "")
        return _chat_chunks(text, model) if stream else _chat_response(text, model)


def wrap(client: Any, editor: KnowledgeEditor) -> Any:
    """An edit-aware stand-in for an OpenAI client or a ``llama_cpp.Llama``."""
    module = type(client).__module__
    if module.startswith("openai"):
        import openai

        if isinstance(client, openai.AsyncOpenAI):
            return EditedAsyncOpenAI(client, editor)
        if isinstance(client, openai.OpenAI):
            return EditedOpenAI(client, editor)
    if module.startswith("llama_cpp"):
        return EditedLlama(client, editor)
    raise ValidationError(
        f"cannot wrap a {type(client).__name__}: expected openai.OpenAI, openai.AsyncOpenAI "
        "or llama_cpp.Llama"
    )
