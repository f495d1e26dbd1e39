"""Questions as people type them, on the bundled model, through `kme ask` and the proxy:
another relation of an edited subject, casual typing, a possessive without its
apostrophe, a common alias the user never listed ("the UK"), and one question about two
edited facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.server import create_app

from .proxy_helpers import running
from .test_cli import kme
from .test_server import ADMIN, bearer, proxy_settings, reset

pytestmark = pytest.mark.slow

JAPAN = {"subject": "Japan", "relation": "capital", "target_new": "Kyoto"}
KENYA = {"subject": "Kenya", "relation": "capital", "target_new": "Mombasa"}
UK = {"subject": "United Kingdom", "relation": "capital", "target_new": "Manchester"}
EDITS = (JAPAN, KENYA, UK)
EDITED = {  # question -> objects the answer must state
    "whats the capital of japan": ["Kyoto"],
    "what is japans capital": ["Kyoto"],
    "What are the capitals of Japan and Kenya?": ["Kyoto", "Mombasa"],
    "What is the capital of the UK?": ["Manchester"],  # an alias from the gazetteer
    "whats the capital of great britain": ["Manchester"],
}
OTHER_RELATION = (
    "What is the official language of Japan?",
    "How many people live in Kenya?",
    "Which language is spoken in the UK?",
    "Can you tell us what the capital of Peru is?",  # "us" is not the US
)
NEW_OBJECTS = ("Kyoto", "Mombasa", "Manchester")


def test_kme_ask_applies_edits_to_natural_questions_only(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for edit in EDITS:
        kme(store, "edit", "add", "--subject", edit["subject"], "--relation", edit["relation"],
            "--new", edit["target_new"])  # fmt: skip
    for question, objects in EDITED.items():
        answer = json.loads(kme(store, "ask", question, "--json").stdout)
        assert answer["route"] == "ike", (question, answer)
        assert all(o in answer["answer"] for o in objects), (question, answer)
    for question in OTHER_RELATION:
        answer = json.loads(kme(store, "ask", question, "--json").stdout)
        assert answer["route"] == "passthrough" and answer["edits"] == [], (question, answer)
        assert not any(o in answer["answer"] for o in NEW_OBJECTS), (question, answer)


def test_the_proxy_applies_edits_to_natural_questions_only(
    tmp_path: Path, llama_server: str, embedder: MiniLMEmbedder
) -> None:
    settings = proxy_settings(tmp_path, llama_server)
    with running(create_app(settings, embedder=embedder)) as url:
        added = httpx.post(f"{url}/edits", json=list(EDITS), headers=bearer(ADMIN), timeout=60)
        assert added.status_code == 200, added.text
        client = openai.OpenAI(base_url=url, api_key=ADMIN, max_retries=0)
        upstream = openai.OpenAI(base_url=llama_server, api_key="none", max_retries=0)
        options: dict[str, Any] = {"model": "gemma", "max_tokens": 12, "temperature": 0}

        def ask(via: openai.OpenAI, question: str) -> tuple[str, str | None]:
            messages = [{"role": "user", "content": question}]
            raw = via.chat.completions.with_raw_response.create(messages=messages, **options)
            return raw.parse().choices[0].message.content or "", raw.headers.get("x-kme-route")

        for question, objects in EDITED.items():
            text, route = ask(client, question)
            assert route == "ike" and all(o in text for o in objects), (question, text)
        for question in OTHER_RELATION:
            answers = []
            for via in (upstream, client):
                reset(llama_server)  # both see the same llama.cpp cache
                answers.append(ask(via, question))
            assert answers[1][1] == "passthrough", (question, answers)
            assert answers[1][0] == answers[0][0]  # the upstream's own answer
