"""Follow-up turns on the bundled model: a pronoun after the subject was named, in
`kme chat` and through the proxy with the openai SDK."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.server import create_app

from .proxy_helpers import running
from .test_cli import KME, kme
from .test_server import ADMIN, bearer, proxy_settings

pytestmark = pytest.mark.slow

OPERA = {
    "subject": "Sydney Opera House",
    "relation": "{} is located in the city of",
    "target_new": "Perth",
}
OPENER = "Tell me about the Sydney Opera House."


def test_kme_chat_answers_a_follow_up_about_the_edited_subject(tmp_path: Path) -> None:
    store = tmp_path / "store"
    kme(store, "edit", "add", "--subject", OPERA["subject"], "--relation", OPERA["relation"],
        "--new", OPERA["target_new"])  # fmt: skip
    env = {**os.environ, "KME_STORE": str(store)}
    env.pop("KME_CHROMA_URL", None)
    lines = f"{OPENER}\nWhich city is it in?\nWho designed it?\n/quit\n"
    done = subprocess.run(
        [*KME, "chat"], input=lines, capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    replies = [r for r in done.stdout.split("> ")[1:] if r.strip()]
    assert len(replies) == 3, done.stdout
    follow_up, other = replies[1], replies[2]
    assert follow_up.startswith("Perth") and "[edits used: e_" in follow_up, follow_up
    assert "[read as: Which city is Sydney Opera House in?]" in follow_up
    assert "Perth" not in other and "[edits used" not in other, other  # another relation


def test_the_proxy_resolves_a_follow_up_from_the_requests_messages(
    tmp_path: Path, llama_server: str, embedder: MiniLMEmbedder
) -> None:
    settings = proxy_settings(tmp_path, llama_server)
    with running(create_app(settings, embedder=embedder)) as url:
        added = httpx.post(f"{url}/edits", json=[OPERA], headers=bearer(ADMIN), timeout=60)
        assert added.status_code == 200, added.text
        client = openai.OpenAI(base_url=url, api_key=ADMIN, max_retries=0)
        options: dict[str, Any] = {"model": "gemma", "max_tokens": 12, "temperature": 0}
        messages = [
            {"role": "user", "content": OPENER},
            {"role": "assistant", "content": "It is a performing arts centre."},
            {"role": "user", "content": "which city is it in"},
        ]
        raw = client.chat.completions.with_raw_response.create(
            messages=messages, extra_body={"kme": True}, **options
        )
        answer = raw.parse()
        assert raw.headers["x-kme-route"] == "ike"
        assert (answer.choices[0].message.content or "").startswith("Perth")
        kme_info = (answer.model_extra or {})["kme"]
        assert kme_info["question"] == "which city is Sydney Opera House in"
        alone = client.chat.completions.with_raw_response.create(messages=messages[-1:], **options)
        assert alone.headers["x-kme-route"] == "passthrough"  # nothing to resolve it from
