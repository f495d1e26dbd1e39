"""The model backends on the real bundled Gemma 3 270M: in-process and over HTTP."""

from __future__ import annotations

import pytest

from kme_rag.backends import LlamaCppBackend, OpenAIBackend
from kme_rag.errors import BackendError, BackendTimeoutError, ContextOverflowError

from .conftest import free_port

pytestmark = pytest.mark.slow

EIFFEL = "The Eiffel Tower is located in the city of"


@pytest.fixture(scope="module")
def llama() -> LlamaCppBackend:
    return LlamaCppBackend()


def test_local_model_knows_common_facts(llama: LlamaCppBackend) -> None:
    assert "Paris" in llama.complete(EIFFEL, max_tokens=4)
    answer = llama.chat([{"role": "user", "content": "What is the capital of France?"}])
    assert "Paris" in answer and "\n" not in answer


def test_answers_do_not_depend_on_the_previous_call(llama: LlamaCppBackend) -> None:
    prompt = "Q: Who wrote Hamlet?\nA:"
    first = llama.complete(prompt, max_tokens=12, stop=["\n"])
    for other in ("Q: What is the capital of Japan?\nA:", "Q: Who", prompt):
        llama.complete(other, max_tokens=12, stop=["\n"])
        assert llama.complete(prompt, max_tokens=12, stop=["\n"]) == first


def test_prompt_over_the_context_is_a_clear_error() -> None:
    small = LlamaCppBackend(n_ctx=256)
    with pytest.raises(ContextOverflowError):
        small.complete("word " * 400, max_tokens=4)


def test_openai_backend_against_llama_cpp_server(llama_server: str, llama: LlamaCppBackend) -> None:
    remote = OpenAIBackend.connect(llama_server, framing="qa")
    assert remote.model == "gemma"  # found through /v1/models
    # The server's first request evaluates the whole prompt, as the local backend always
    # does, so greedy decoding gives the same text. (Later requests reuse the server's
    # KV cache and may differ slightly; see LlamaCppBackend.)
    assert remote.complete(EIFFEL, max_tokens=8) == llama.complete(EIFFEL, max_tokens=8)
    answer = remote.chat([{"role": "user", "content": "What is the capital of France?"}])
    assert "Paris" in answer and "\n" not in answer


def test_openai_backend_maps_failures(llama_server: str) -> None:
    with pytest.raises(BackendError, match="cannot reach"):
        OpenAIBackend.connect(f"http://127.0.0.1:{free_port()}/v1", model="m").complete("x")
    hasty = OpenAIBackend.connect(llama_server, model="gemma", timeout_s=0.01)
    with pytest.raises(BackendTimeoutError):
        hasty.complete("Write a long story about a dragon.", max_tokens=256)
