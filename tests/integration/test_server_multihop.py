"""Multi-hop through the proxy (``KME_SERVE_MULTIHOP``): the walk over the edits answers
a question no single edit is in scope of, upstream a real llama_cpp.server (Gemma)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.server import create_app

from .proxy_helpers import running
from .test_server import ADMIN, EIFFEL, bearer, proxy_settings

pytestmark = pytest.mark.slow

ROME = {"subject": "Rome", "relation": "{} is located in the country of", "target_new": "Italy"}


def test_the_proxy_walks_the_ripple_of_two_edits(
    tmp_path: Path, llama_server: str, embedder: MiniLMEmbedder, data_dir: Path
) -> None:
    settings = proxy_settings(tmp_path, llama_server, serve_multihop=True, data_dir=data_dir)
    with running(create_app(settings, embedder=embedder)) as url:
        added = httpx.post(f"{url}/edits", json=[EIFFEL, ROME], headers=bearer(ADMIN), timeout=60)
        ids = [e["id"] for e in added.json()["data"]]
        client = openai.OpenAI(base_url=url, api_key=ADMIN, max_retries=0)
        question = [{"role": "user", "content": "Which country is the Eiffel Tower in?"}]
        options: dict[str, Any] = {"model": "gemma", "max_tokens": 8, "temperature": 0}
        raw = client.chat.completions.with_raw_response.create(
            messages=question, extra_body={"kme": True}, **options
        )
        answer = raw.parse()
        assert raw.headers["x-kme-route"] == "multihop"
        assert set(raw.headers["x-kme-edits"].split(",")) == set(ids)
        assert answer.choices[0].message.content == "Italy"
        hops = (answer.model_extra or {})["kme"]["hops"]
        assert hops and hops[-1]["answer"] == "Italy" and hops[-1]["source"] != "model"
        stream = client.chat.completions.create(messages=question, stream=True, **options)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Italy"
