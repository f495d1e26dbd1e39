"""The real proxy (uvicorn on loopback) with the official openai SDK, upstream a real
llama_cpp.server with the bundled Gemma; the admin API, keys, and every error status."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.formats import read_edits
from kme_rag.memory.store import EditMemory
from kme_rag.server import create_app
from kme_rag.settings import Settings

from .conftest import free_port
from .proxy_helpers import running

pytestmark = pytest.mark.slow

CHAT, ADMIN, TENANT = "sk-chat", "sk-admin", "sk-tenant-a"
EIFFEL = {
    "subject": "Eiffel Tower",
    "relation": "{} is located in the city of",
    "target_new": "Rome",
}
IN_SCOPE = "In which city is the Eiffel Tower?"
UNRELATED = "What is the capital of France?"


def proxy_settings(tmp: Path, upstream: str, **extra: Any) -> Settings:
    return Settings(
        store=tmp / "store",
        collection=f"proxy_{uuid.uuid4().hex[:10]}",
        upstream_url=upstream,
        upstream_framing="qa",  # the bundled Gemma is a base model
        api_keys=(CHAT, TENANT),
        admin_keys=(ADMIN,),
        key_namespaces={TENANT: ("tenant-a",), ADMIN: ("*",)},  # CHAT: the default only
        **extra,
    )


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, llama_server: str, embedder: MiniLMEmbedder
) -> Iterator[str]:
    settings = proxy_settings(tmp_path_factory.mktemp("proxy"), llama_server)
    with running(create_app(settings, embedder=embedder)) as url:
        yield url


@pytest.fixture(scope="module")
def eiffel(proxy: str) -> str:
    """The Eiffel Tower moved to Rome, added through the admin API; its id."""
    response = httpx.post(f"{proxy}/edits", json=EIFFEL, headers=bearer(ADMIN))
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def bearer(key: str, namespace: str | None = None) -> dict[str, str]:
    headers = {"authorization": f"Bearer {key}"}
    return headers | ({"x-kme-namespace": namespace} if namespace else {})


def reset(upstream: str) -> None:
    """One unrelated request first, so two calls compared see the same llama.cpp cache."""
    body = {"model": "gemma", "prompt": "Hello", "max_tokens": 1, "temperature": 0}
    httpx.post(f"{upstream}/completions", json=body, timeout=60).raise_for_status()


def ask(messages: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": messages}]


def test_sync_sdk_gets_the_edited_fact_and_the_upstreams_own_answer_elsewhere(
    proxy: str, eiffel: str, llama_server: str
) -> None:
    client = openai.OpenAI(base_url=proxy, api_key=CHAT, max_retries=0)
    direct = openai.OpenAI(base_url=llama_server, api_key="none", max_retries=0)
    options: dict[str, Any] = {"model": "gemma", "max_tokens": 8, "temperature": 0}

    raw = client.chat.completions.with_raw_response.create(messages=ask(IN_SCOPE), **options)
    assert raw.headers["x-kme-edits"] == eiffel and raw.headers["x-kme-route"] == "ike"
    assert raw.parse().choices[0].message.content == "Rome"
    stream = client.chat.completions.create(messages=ask(IN_SCOPE), stream=True, **options)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Rome"
    cloze = client.completions.create(
        prompt=EIFFEL["relation"].format("The Eiffel Tower"), **options
    )
    assert cloze.choices[0].text.startswith(" Rome")

    for call in ("chat", "completion"):
        answers = []
        for sdk in (direct, client):
            reset(llama_server)
            if call == "chat":
                out = sdk.chat.completions.create(messages=ask(UNRELATED), **options)
                answers.append((out.choices[0].message.content, out.usage))
            else:
                out = sdk.completions.create(prompt="The capital of France is", **options)
                answers.append((out.choices[0].text, out.usage))
        assert answers[0] == answers[1], call
    raw_models = client.models.with_raw_response.list()
    assert [m.id for m in raw_models.parse().data] == ["gemma"]


def test_async_sdk_streams_and_not(proxy: str, eiffel: str, llama_server: str) -> None:
    async def run() -> tuple[str, str, str, str, dict[str, Any]]:
        async with (
            openai.AsyncOpenAI(base_url=proxy, api_key=CHAT, max_retries=0) as client,
            openai.AsyncOpenAI(base_url=llama_server, api_key="none", max_retries=0) as direct,
        ):
            return await calls(client, direct)

    async def calls(
        client: openai.AsyncOpenAI, direct: openai.AsyncOpenAI
    ) -> tuple[str, str, str, str, dict[str, Any]]:
        options: dict[str, Any] = {"model": "gemma", "max_tokens": 6, "temperature": 0}
        edited = await client.chat.completions.create(
            # a where-question is a known scope regression (tests/integration/test_scope.py)
            messages=ask("Which city is the Eiffel Tower in?"),
            extra_body={"kme": True},
            **options,
        )
        parts = []
        stream = await client.completions.create(
            prompt="The Eiffel Tower is located in the city of", stream=True, **options
        )
        async for chunk in stream:
            parts.append(chunk.choices[0].text if chunk.choices else "")
        unrelated = []
        for sdk in (direct, client):
            await asyncio.to_thread(reset, llama_server)
            stream = await sdk.completions.create(
                prompt="The Statue of Liberty is located in", stream=True, **options
            )
            unrelated.append("".join([c.choices[0].text async for c in stream if c.choices]))
        content = edited.choices[0].message.content or ""
        return content, "".join(parts), unrelated[0], unrelated[1], edited.model_extra or {}

    edited, streamed, direct, through, extra = asyncio.run(run())
    assert edited.startswith("Rome") and streamed.startswith(" Rome")
    assert through == direct and "Rome" not in direct
    assert extra["kme"]["route"] == "ike" and extra["kme"]["edits"][0]["id"] == eiffel


def test_admin_api_round_trip(proxy: str, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    admin = httpx.Client(base_url=proxy, headers=bearer(ADMIN, "round-trip"))
    japan = {"subject": "Japan", "relation": "capital", "target_new": "Kyoto"}
    one = admin.post("/edits", json=japan).json()
    batch = [
        {"subject": "Japan", "relation": "capital", "target_new": "Osaka"},
        {"statement": "The Louvre moved to Lyon in 2026."},
    ]
    many = admin.post("/edits", json=batch).json()["data"]
    active = admin.get("/edits").json()["data"]
    assert [e["id"] for e in active] == [e["id"] for e in many]  # Osaka superseded Kyoto
    every = admin.get("/edits", params={"status": "all"}).json()["data"]
    assert {e["id"]: e["status"] for e in every}[one["id"]] == "superseded"
    assert admin.get(f"/edits/{many[0]['id']}").json()["target_new"] == "Osaka"

    def answer(question: str) -> httpx.Response:
        body = {"model": "gemma", "messages": ask(question), "max_tokens": 6, "temperature": 0}
        return admin.post("/chat/completions", json=body, timeout=60)

    asked = answer("What is the capital of Japan?")
    assert asked.headers["x-kme-edits"] == many[0]["id"]
    assert asked.json()["choices"][0]["message"]["content"].startswith("Osaka")
    assert admin.delete(f"/edits/{many[0]['id']}").json() == {
        "id": many[0]["id"],
        "object": "edit.deleted",
        "deleted": True,
    }
    assert answer("What is the capital of Japan?").headers["x-kme-route"] == "passthrough"
    undone = admin.post("/edits/undo").json()
    assert undone["kind"] == "delete" and undone["restored"] == [many[0]["id"]]
    assert answer("What is the capital of Japan?").headers["x-kme-edits"] == many[0]["id"]

    exported = admin.get("/edits/export")
    assert exported.headers["content-type"] == "application/x-ndjson"
    (tmp_path / "edits.jsonl").write_text(exported.text)
    fresh = EditMemory.open(
        Settings(store=tmp_path / "fresh"), embedder=embedder, namespace="round-trip"
    )
    fresh.import_file(tmp_path / "edits.jsonl")
    assert [e.model_dump() for e in fresh.edits(status=None)] == [
        e.model_dump() for e in read_edits(tmp_path / "edits.jsonl")
    ]
    assert {e.id for e in fresh.edits(status=None)} == {e["id"] for e in every}


def test_chat_keys_ask_admin_keys_change_and_namespaces_stay_apart(proxy: str, eiffel: str) -> None:
    body = {"model": "gemma", "messages": ask(IN_SCOPE), "max_tokens": 4, "temperature": 0}
    for headers, status in [
        ({}, 401),
        (bearer("sk-wrong"), 401),
        (bearer(CHAT), 200),
        (bearer(TENANT, "tenant-a"), 200),
        (bearer(TENANT), 403),  # the default namespace is not this key's
    ]:
        response = httpx.post(f"{proxy}/chat/completions", json=body, headers=headers, timeout=60)
        assert response.status_code == status, (headers, response.text)
        if status != 200:
            error = response.json()["error"]
            assert set(error) == {"message", "type", "code"}
    assert httpx.get(f"{proxy}/edits", headers=bearer(CHAT)).status_code == 200
    denied = httpx.post(f"{proxy}/edits", json=EIFFEL, headers=bearer(CHAT))
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    assert httpx.delete(f"{proxy}/edits/{eiffel}", headers=bearer(CHAT)).status_code == 403

    # tenant-a's namespace has no edits: the Eiffel Tower question is passed through
    other = httpx.post(
        f"{proxy}/chat/completions", json=body, headers=bearer(TENANT, "tenant-a"), timeout=60
    )
    assert other.headers["x-kme-route"] == "passthrough" and other.headers["x-kme-edits"] == ""
    assert httpx.get(f"{proxy}/edits", headers=bearer(TENANT, "tenant-a")).json()["data"] == []


def test_bad_input_is_an_openai_error_with_the_right_status(proxy: str) -> None:
    client = httpx.Client(base_url=proxy, headers=bearer(ADMIN))
    as_json = {"content-type": "application/json"}
    cases = [
        (
            client.post("/chat/completions", content=b'{"model": "g",', headers=as_json),
            400,
            "not valid JSON",
        ),
        (client.post("/chat/completions", content=b'{"model": "g"}'), 400, "Content-Type"),
        (client.post("/chat/completions", json={"model": "g", "messages": "hi"}), 400, "messages"),
        (
            client.post("/completions", json={"model": "g", "prompt": "x", "max_tokens": "8"}),
            400,
            "max_tokens",
        ),
        (client.post("/edits", json={"subject": "X"}), 400, "target_new"),
        (client.get("/edits/e_missing"), 404, "no edit 'e_missing'"),
        (client.delete("/edits/e_missing"), 404, "no edit"),
        (
            client.post("/completions", content=b"x" * 2_000_000, headers=as_json),
            413,
            "over the limit",
        ),
        (client.get("/edits", headers={"x-kme-namespace": "bad name!"}), 400, "x-kme-namespace"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert words in error["message"] and error["type"] and "Traceback" not in response.text


def test_upstream_down_is_502_and_upstream_too_slow_is_504(
    tmp_path: Path, llama_server: str, embedder: MiniLMEmbedder
) -> None:
    down = proxy_settings(tmp_path / "down", f"http://127.0.0.1:{free_port()}/v1")
    # 64 tokens take the model over a second; the proxy waits 0.3 s
    slow = proxy_settings(tmp_path / "slow", llama_server, upstream_timeout_s=0.3)
    long_answer = {"model": "gemma", "prompt": "Once upon a time", "max_tokens": 64, "stop": []}
    for settings, status, kind in [(down, 502, "upstream_error"), (slow, 504, "upstream_timeout")]:
        with running(create_app(settings, embedder=embedder)) as url:
            client = openai.OpenAI(base_url=url, api_key=ADMIN, max_retries=0)
            with pytest.raises(openai.APIStatusError) as raised:
                client.completions.create(**long_answer)
            assert raised.value.status_code == status
            assert isinstance(raised.value.body, dict) and raised.value.body["type"] == kind
            streamed = httpx.post(
                f"{url}/chat/completions",
                json={
                    "model": "gemma",
                    "messages": ask(UNRELATED),
                    "stream": True,
                    "max_tokens": 200,
                },
                headers=bearer(ADMIN),
                timeout=30,
            )
            if streamed.status_code == 200:  # the status line had gone: an SSE error event
                event = json.loads(streamed.text.split("data: ", 1)[1])
                assert event["error"]["type"] == kind
            else:
                assert streamed.status_code == status
                assert streamed.json()["error"]["type"] == kind
