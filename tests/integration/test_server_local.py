"""No upstream given: the proxy runs the bundled Gemma in-process (llama_cpp.server's
own app behind an ASGI transport) and speaks the same API."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from kme_rag.memory.edit import parse_edit
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.server import create_app
from kme_rag.settings import Settings

from .conftest import THREADS
from .proxy_helpers import running
from .test_server import EIFFEL

pytestmark = pytest.mark.slow

UNRELATED = "The Statue of Liberty is located in the city of"


def test_the_local_model_in_process_answers_edited_and_unedited(
    tmp_path: Path, embedder: MiniLMEmbedder, llama_server: str
) -> None:
    settings = Settings(store=tmp_path / "store", n_threads=THREADS, n_threads_batch=THREADS)
    EditMemory.open(settings, embedder=embedder).add(parse_edit(EIFFEL))
    with running(create_app(settings, embedder=embedder)) as url:
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
        through = unrelated(client)
        assert [m.id for m in client.models.list().data] == ["local"]
        chat = client.chat.completions.create(
            model="local",
            messages=[{"role": "user", "content": "In which city is the Eiffel Tower?"}],
            max_tokens=8,
            temperature=0,
        )
    assert chat.choices[0].message.content == "Rome"  # Q/A-framed: Gemma has no template
    alone = openai.OpenAI(base_url=llama_server, api_key="none", max_retries=0)
    assert through == unrelated(alone)  # llama_cpp.server on its own, same model and threads


def unrelated(client: openai.OpenAI) -> str:
    """An unrelated completion, after the same one-token request (so that both servers'
    llama.cpp caches hold the same prefix when it is evaluated)."""
    client.completions.create(model="gemma", prompt="Hello", max_tokens=1, temperature=0)
    out = client.completions.create(model="gemma", prompt=UNRELATED, max_tokens=8, temperature=0)
    return out.choices[0].text
