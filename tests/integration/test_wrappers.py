"""wrap(): the real openai SDK against llama.cpp's real server, and a real llama_cpp.Llama."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from llama_cpp import Llama

from kme_rag import wrap
from kme_rag.backends import CallableBackend, bundled_model_path
from kme_rag.editor import KnowledgeEditor
from kme_rag.errors import ValidationError
from kme_rag.memory.edit import parse_edit
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings

from .conftest import THREADS

pytestmark = pytest.mark.slow

EIFFEL = "The Eiffel Tower is located in the city of"


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbedder) -> KnowledgeEditor:
    store = tmp_path_factory.mktemp("wrap") / "store"
    memory = EditMemory.open(Settings(store=store), embedder=embedder)
    memory.add(
        parse_edit(
            {
                "subject": "Eiffel Tower",
                "relation": "{} is located in the city of",
                "target_new": "Rome",
            }
        )
    )
    return KnowledgeEditor(CallableBackend(lambda p: "unused"), memory)


class Bodies:
    """An httpx request hook keeping the JSON body of every request the SDK sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> None:
        if request.content:
            self.sent.append(json.loads(request.content))

    async def hook(self, request: httpx.Request) -> None:
        self(request)


def test_openai_client_sends_the_exact_call_out_of_scope_and_the_fact_in_scope(
    llama_server: str, editor: KnowledgeEditor
) -> None:
    bodies = Bodies()
    client = openai.OpenAI(
        base_url=llama_server,
        api_key="none",
        http_client=httpx.Client(event_hooks={"request": [bodies]}),
    )
    edited = wrap(client, editor)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    response = edited.chat.completions.create(
        model="gemma", messages=question, max_tokens=8, temperature=0
    )
    assert isinstance(response, openai.types.chat.ChatCompletion)
    assert bodies.sent[-1]["messages"] == question and bodies.sent[-1]["max_tokens"] == 8

    in_scope = [{"role": "user", "content": "Which city is the Eiffel Tower in?"}]
    stream = edited.chat.completions.create(
        model="gemma", messages=in_scope, max_tokens=8, temperature=0, stream=True
    )
    chunks = list(stream)
    assert chunks and all(c.object == "chat.completion.chunk" for c in chunks)
    sent = bodies.sent[-1]["messages"]
    assert (
        sent[0]["role"] == "system"
        and "Eiffel Tower is located in the city of Rome." in sent[0]["content"]
    )
    assert sent[1:] == in_scope and bodies.sent[-1]["stream"] is True
    assert [m.id for m in edited.models.list().data] == ["gemma"]  # the rest passes through


def test_async_openai_client_is_wrapped_too(llama_server: str, editor: KnowledgeEditor) -> None:
    bodies = Bodies()

    async def run() -> Any:
        client = openai.AsyncOpenAI(
            base_url=llama_server,
            api_key="none",
            http_client=httpx.AsyncClient(event_hooks={"request": [bodies.hook]}),
        )
        edited = wrap(client, editor)
        return await edited.chat.completions.create(
            model="gemma",
            messages=[{"role": "user", "content": "In which city is the Eiffel Tower?"}],
            max_tokens=4,
            temperature=0,
        )

    response = asyncio.run(run())
    assert response.choices[0].message is not None
    assert bodies.sent[-1]["messages"][0]["role"] == "system"


def test_llama_object_completions_apply_the_edit_and_leave_the_rest(
    editor: KnowledgeEditor,
) -> None:
    llama = Llama(str(bundled_model_path()), n_ctx=1024, n_threads=THREADS, verbose=False, seed=0)
    edited = wrap(llama, editor)
    out = edited.create_completion(EIFFEL, max_tokens=6, temperature=0)
    assert out["choices"][0]["text"].startswith(" Rome")
    prompt = "The Statue of Liberty is located in the city of"
    llama.reset()
    direct = llama.create_completion(prompt, max_tokens=6, temperature=0)["choices"][0]["text"]
    llama.reset()
    through = edited.create_completion(prompt, max_tokens=6, temperature=0)["choices"][0]["text"]
    assert through == direct

    chat = edited.create_chat_completion(
        messages=[{"role": "user", "content": "In which city is the Eiffel Tower?"}], max_tokens=8
    )
    assert chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"]["content"].startswith("Rome")
    streamed = list(edited.create_completion(EIFFEL, max_tokens=4, temperature=0, stream=True))
    assert "".join(c["choices"][0]["text"] for c in streamed).startswith(" Rome")


def test_wrapping_something_else_is_a_clear_error(editor: KnowledgeEditor, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot wrap a PosixPath"):
        wrap(tmp_path, editor)


def test_the_wrapped_client_walks_multi_hop_questions_and_resolves_follow_ups(
    llama_server: str, tmp_path: Path, embedder: MiniLMEmbedder, data_dir: Path
) -> None:
    from kme_rag.multihop.walk import build_walker

    memory = EditMemory.open(Settings(store=tmp_path / "store"), embedder=embedder)
    city = {"subject": "Eiffel Tower", "relation": "{} is located in the city of"}
    country = {"subject": "Rome", "relation": "{} is located in the country of"}
    memory.add_many(
        [parse_edit({**city, "target_new": "Rome"}), parse_edit({**country, "target_new": "Italy"})]
    )
    model = CallableBackend(lambda p: "unused")
    walker = build_walker(Settings(data_dir=data_dir), model, memory)
    editor = KnowledgeEditor(model, memory, multihop=walker)
    bodies = Bodies()
    client = openai.OpenAI(
        base_url=llama_server,
        api_key="none",
        http_client=httpx.Client(event_hooks={"request": [bodies]}),
    )
    edited = wrap(client, editor)
    ripple = [{"role": "user", "content": "Which country is the Eiffel Tower in?"}]
    answer = edited.chat.completions.create(model="gemma", messages=ripple, max_tokens=8)
    assert isinstance(answer, openai.types.chat.ChatCompletion)
    assert answer.choices[0].message.content == "Italy" and bodies.sent == []  # the edits' walk
    chunks = list(edited.chat.completions.create(model="gemma", messages=ripple, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Italy"
    follow_up = [
        {"role": "user", "content": "Tell me about the Eiffel Tower."},
        {"role": "assistant", "content": "It is a wrought-iron tower."},
        {"role": "user", "content": "Which city is it in?"},
    ]
    edited.chat.completions.create(model="gemma", messages=follow_up, max_tokens=8, temperature=0)
    sent = bodies.sent[-1]["messages"]
    assert sent[0]["role"] == "system" and "located in the city of Rome" in sent[0]["content"]
    assert sent[1:] == follow_up  # the model still sees the conversation as typed
