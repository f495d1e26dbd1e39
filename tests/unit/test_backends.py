from __future__ import annotations

from collections.abc import Sequence

import pytest

from kme_rag.backends import CallableBackend, Message, cut_at_stop, qa_prompt
from kme_rag.errors import BackendError, BackendTimeoutError, ValidationError


def test_qa_prompt_frames_a_conversation_for_a_base_model() -> None:
    messages: list[Message] = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": "And of\nJapan?"},
    ]
    assert qa_prompt(messages) == (
        "Answer briefly.\n\nQ: Capital of France?\nA: Paris\nQ: And of Japan?\nA:"
    )


def test_qa_prompt_needs_a_final_user_message() -> None:
    with pytest.raises(ValidationError):
        qa_prompt([{"role": "system", "content": "hi"}])


def test_cut_at_stop_takes_the_earliest_stop() -> None:
    assert cut_at_stop(" Tokyo\nQ: next\n\nmore", ["\n\n", "\nQ:"]) == " Tokyo"
    assert cut_at_stop("no stop here", ["\nQ:"]) == "no stop here"


def test_callable_backend_chat_sends_the_qa_frame_and_stops() -> None:
    seen: list[str] = []

    def model(prompt: str) -> str:
        seen.append(prompt)
        return " Tokyo, Japan\nQ: What else?"

    backend = CallableBackend(model)
    answer = backend.chat([{"role": "user", "content": "What is the capital of Japan?"}])
    assert answer == "Tokyo, Japan"
    assert seen == ["Q: What is the capital of Japan?\nA:"]


def test_callable_backend_uses_a_chat_function_when_given() -> None:
    def chat(messages: Sequence[Message]) -> str:
        return f"{len(messages)} messages"

    backend = CallableBackend(lambda p: "unused", chat)
    assert backend.chat([{"role": "user", "content": "hi"}]) == "1 messages"


def test_callable_backend_errors_become_backend_errors() -> None:
    def broken(prompt: str) -> str:
        raise ConnectionError("refused")

    def slow(prompt: str) -> str:
        raise TimeoutError("took too long")

    with pytest.raises(BackendError, match="refused"):
        CallableBackend(broken).complete("x")
    with pytest.raises(BackendTimeoutError):
        CallableBackend(slow).complete("x")
    with pytest.raises(ValidationError):
        CallableBackend(lambda p: p).complete("x", max_tokens=0)
