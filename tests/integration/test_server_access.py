"""Who may reach the real proxy, and where: keys are deny by default across namespaces,
and an app with no keys answers loopback clients only, however it is served. No model:
the upstream is a port nothing listens on, and nothing here goes upstream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.server import create_app
from kme_rag.settings import Settings

from .conftest import free_port
from .proxy_helpers import running
from .test_server import ADMIN, CHAT, TENANT, bearer, proxy_settings


def dead_upstream() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.fixture
def keyed(tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[str]:
    """The proxy with keys: CHAT not listed, TENANT on tenant-a, ADMIN on any ("*")."""
    with running(create_app(proxy_settings(tmp_path, dead_upstream()), embedder=embedder)) as url:
        yield url


def open_app(tmp_path: Path, embedder: MiniLMEmbedder) -> ASGIApp:
    """The proxy with no keys configured."""
    settings = Settings(
        store=tmp_path / "store",
        collection=f"open_{uuid.uuid4().hex[:10]}",
        upstream_url=dead_upstream(),
    )
    return create_app(settings, embedder=embedder)


def test_a_key_not_listed_reaches_only_the_default_namespace(keyed: str) -> None:
    for headers, status in [
        (bearer(CHAT), 200),
        (bearer(CHAT, "default"), 200),
        (bearer(CHAT, "tenant-a"), 403),
        (bearer(TENANT, "tenant-a"), 200),
        (bearer(TENANT), 403),
    ]:
        response = httpx.get(f"{keyed}/edits", headers=headers)
        assert response.status_code == status, (headers, response.text)
    denied = httpx.get(f"{keyed}/edits", headers=bearer(CHAT, "tenant-a")).json()["error"]
    assert denied["type"] == "permission_error" and "'tenant-a'" in denied["message"]


def test_a_key_listed_with_a_star_reaches_every_namespace(keyed: str) -> None:
    for namespace in (None, "tenant-a", "anywhere-else"):
        response = httpx.get(f"{keyed}/edits", headers=bearer(ADMIN, namespace))
        assert response.status_code == 200, (namespace, response.text)
        assert response.json()["data"] == []


def test_undo_needs_an_admin_key_and_something_to_undo(keyed: str) -> None:
    as_chat = httpx.post(f"{keyed}/edits/undo", headers=bearer(CHAT))
    assert as_chat.status_code == 403 and as_chat.json()["error"]["type"] == "permission_error"
    as_admin = httpx.post(f"{keyed}/edits/undo", headers=bearer(ADMIN, "nothing-here"))
    assert as_admin.status_code == 409, as_admin.text
    assert as_admin.json()["error"]["type"] == "conflict_error"


def test_the_openapi_schema_states_the_namespace_rule(keyed: str) -> None:
    schema = httpx.get(f"{keyed.removesuffix('/v1')}/openapi.json").json()
    header = next(
        p
        for p in schema["paths"]["/v1/edits"]["get"]["parameters"]
        if p["name"] == "x-kme-namespace"
    )
    assert "KME_KEY_NAMESPACES" in header["description"] and '["*"]' in header["description"]


def through(app: ASGIApp, client: tuple[str, int] | None) -> list[httpx.Response]:
    """GET /healthz, GET /v1/edits and POST /v1/edits/undo from ``client`` (None: a
    request whose scope says nothing of its client)."""

    async def anonymous(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "client": None}, receive, send)

    transport = (
        httpx.ASGITransport(anonymous)
        if client is None
        else httpx.ASGITransport(app, client=client)
    )

    async def calls() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as http:
            return [
                await http.get("/healthz"),
                await http.get("/v1/edits"),
                await http.post("/v1/edits/undo"),
            ]

    return asyncio.run(calls())


@pytest.mark.parametrize("client", [("203.0.113.5", 4000), ("::ffff:10.1.2.3", 4000), None])
def test_without_keys_a_client_off_loopback_gets_403(
    tmp_path: Path, embedder: MiniLMEmbedder, client: tuple[str, int] | None
) -> None:
    for response in through(open_app(tmp_path, embedder), client):
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["type"] == "permission_error" and "loopback" in error["message"]
        assert client is None or client[0] in error["message"]


@pytest.mark.parametrize("client", [("127.0.0.1", 50000), ("::1", 50000), ("::ffff:127.0.0.1", 1)])
def test_without_keys_a_loopback_client_gets_in(
    tmp_path: Path, embedder: MiniLMEmbedder, client: tuple[str, int]
) -> None:
    health, edits, undo = through(open_app(tmp_path, embedder), client)
    assert health.status_code == 200 and edits.json()["data"] == []
    assert undo.status_code == 409  # reached the store: nothing to undo


def test_without_keys_uvicorn_on_loopback_answers(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    with running(open_app(tmp_path, embedder)) as url:
        assert httpx.get(f"{url}/edits").json()["data"] == []


def test_with_keys_a_client_off_loopback_is_asked_for_a_key(
    tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    app = create_app(proxy_settings(tmp_path, dead_upstream()), embedder=embedder)
    health, edits, _ = through(app, ("203.0.113.5", 4000))
    assert health.status_code == 200 and edits.status_code == 401


def test_a_posted_statement_is_read_into_facts_in_the_callers_namespace(keyed: str) -> None:
    text = {"statement": "Acme Corp has moved its headquarters to Austin. Lunch was good."}
    response = httpx.post(f"{keyed}/edits", json=text, headers=bearer(ADMIN, "tenant-a"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "edit.text" and body["understood"] is True
    fact, kept = body["data"]
    assert (fact["subject"], fact["relation_id"], fact["target_new"]) == (
        "Acme Corp",
        "P159",
        "Austin",
    )
    assert kept["subject"] is None and kept["statement"] == "Lunch was good."
    assert {fact["namespace"], kept["namespace"]} == {"tenant-a"}
    listed = httpx.get(f"{keyed}/edits", headers=bearer(ADMIN, "tenant-a")).json()["data"]
    assert {e["id"] for e in listed} == {fact["id"], kept["id"]}
    assert httpx.get(f"{keyed}/edits", headers=bearer(ADMIN)).json()["data"] == []
    raw = httpx.post(
        f"{keyed}/edits?extract=false", json=text, headers=bearer(ADMIN, "tenant-a")
    ).json()
    assert raw["statement"] == text["statement"] and raw["subject"] is None
