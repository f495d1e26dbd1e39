"""Per-tenant freshness under concurrent writes: two proxy processes share one real
``chroma run`` server and collection. A writer adds edits through proxy A, one request
each, while a reader asks proxy B about each acknowledged subject until B's answer uses
the edit. Every add must be used by B within a second of A acknowledging it; an add
undone through A must stop being used by B within a second.

"Used" is what a client sees: the ``x-kme-edits`` header of B's chat answer names the
edit. The header does not say whether retrieval found the edit by vector search (which
reads Chroma, fresh at once) or by name in B's fact graph (fresh only after B's poll
syncs), so the setup rules the vector path out: for every subject four *decoys*,
unstructured edits worded exactly like the question, are stored first. They are nearer
the question than the edit is, so B's nearest-k search returns them, and only the
graph — the per-process state under test — can put the edit in the answer. The test
checks that property afterwards with the store's own search.

The upstream is a tiny OpenAI-compatible HTTP server written here (the answers' text
does not matter, only the proxy's headers), so every request costs the proxy's planning
and nothing else.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from kme_rag.editor import EditorParams
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings

from .proxy_helpers import proxy_processes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ADMIN = "sk-race-admin"
HEADERS = {"authorization": f"Bearer {ADMIN}"}
REFRESH_S = 0.2
FRESH_WITHIN_S = 1.0
GIVE_UP_S = 5.0  # an edit not seen this long after its ack is recorded as never seen
ADDS = 220
MAX_READS = 60 * ADDS  # bounds the reader whatever happens
RACE_DEADLINE_S = 120.0
RELATION = "{} is located in the city of"
FORMS = (  # the decoys' wording; the first is the question asked
    "In which city is the {}?",
    "Which city is the {} in?",
    "In what city is the {}?",
    "The {}: in which city?",
)
UNDONE = "Zorblat Undo Tower"


def subject(i: int) -> str:
    return f"Zorblat {i} Tower"


def question(name: str) -> str:
    return FORMS[0].format(name)


class _Answers(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible upstream: one fixed chat answer."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = {
            "id": "chatcmpl-race",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "race",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Quelport"},
                    "finish_reason": "stop",
                }
            ],
        }
        self._send(body)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "race", "object": "model"}]})

    def _send(self, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request on stderr."""


@contextmanager
def upstream_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Race:
    writer: str  # proxy A's /v1 URL
    reader: str  # proxy B's
    settings: Settings  # the shared store, for the test's own checks
    out: Path


def decoys(names: list[str]) -> list[dict[str, str]]:
    return [{"statement": form.format(name)} for name in names for form in FORMS]


Outcome = int | str  # an HTTP status, or the transport error a client got instead


def edits_used(client: httpx.Client, proxy: str, name: str) -> tuple[Outcome, set[str]]:
    """How the proxy answered the question about ``name``, and the edits it used."""
    body = {
        "model": "race",
        "messages": [{"role": "user", "content": question(name)}],
        "max_tokens": 1,
    }
    try:
        response = client.post(f"{proxy}/chat/completions", json=body, headers=HEADERS)
    except httpx.TransportError as exc:  # a proxy that fails mid-request resets the connection
        return type(exc).__name__, set()
    used = response.headers.get("x-kme-edits", "")
    return response.status_code, {i for i in used.split(",") if i}


def add(client: httpx.Client, proxy: str, name: str) -> str:
    edit = {"subject": name, "relation": RELATION, "target_new": "Quelport"}
    response = client.post(f"{proxy}/edits", json=edit, headers=HEADERS)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
def race(chroma_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Race]:
    assert len(FORMS) >= EditorParams().k, "fewer decoys than the nearest-k search returns"
    out = tmp_path_factory.mktemp("proxy-race")
    settings = Settings(
        chroma_url=chroma_url,
        collection=f"race_{uuid.uuid4().hex[:10]}",
        store=out / "unused",
    )
    env = {
        "KME_CHROMA_URL": chroma_url,
        "KME_COLLECTION": settings.collection,
        "KME_STORE": str(settings.store),
        "KME_ADMIN_KEYS": ADMIN,  # the default namespace: no KME_KEY_NAMESPACES needed
        "KME_REFRESH_INTERVAL_S": str(REFRESH_S),
        "KME_SERVE_MULTIHOP": "false",
        "KME_UPSTREAM_FRAMING": "chat",
    }
    with (
        upstream_server() as upstream,
        proxy_processes(2, env, out, upstream) as (writer, reader),
        httpx.Client(timeout=60) as client,
    ):
        names = [subject(i) for i in range(ADDS)] + [UNDONE]
        stored = client.post(f"{writer}/edits", json=decoys(names), headers=HEADERS)
        assert stored.status_code == 200, stored.text
        for proxy in (writer, reader):  # opens the tenant, which the poll then keeps fresh
            assert edits_used(client, proxy, subject(0))[0] == 200
        yield Race(writer, reader, settings, out)


Ack = tuple[str, str, float]  # subject, edit id, when A acknowledged it


def _write(proxy: str, names: list[str], acks: queue.Queue[Ack | None], errors: list[str]) -> None:
    """Add one edit per name through ``proxy``, as fast as it acknowledges them."""
    try:
        with httpx.Client(timeout=60) as client:
            for name in names:
                edit_id = add(client, proxy, name)
                acks.put((name, edit_id, time.monotonic()))
    except Exception as exc:  # reported by the test, not lost in the thread
        errors.append(repr(exc))
    finally:
        acks.put(None)


@dataclass
class Watch:
    """The reader's record: when each acknowledged edit was first seen in B."""

    acks: queue.Queue[Ack | None]
    delays: dict[str, float] = field(default_factory=dict)  # edit id -> seconds after ack
    missed: list[str] = field(default_factory=list)
    bad: list[Outcome] = field(default_factory=list)
    reads: int = 0
    writing: bool = True
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> subject, ack
    turn: deque[str] = field(default_factory=deque)

    def take(self) -> None:
        """Move the acknowledged adds to ``pending``; waits (1 s at most) only when
        there is nothing else to ask about."""
        wait = not self.turn
        while self.writing:
            try:
                ack = self.acks.get(timeout=1.0) if wait else self.acks.get_nowait()
            except queue.Empty:
                return
            if ack is None:
                self.writing = False
                return
            name, edit_id, acked = ack
            self.pending[edit_id] = (name, acked)
            self.turn.append(edit_id)
            wait = False

    def ask(self, client: httpx.Client, proxy: str) -> None:
        """Ask about the next pending edit; the delay is taken when the answer that
        first uses it arrives (an upper bound on when a client would have seen it)."""
        edit_id = self.turn.popleft()
        name, acked = self.pending[edit_id]
        status, used = edits_used(client, proxy, name)
        now = time.monotonic()
        self.reads += 1
        if status != 200:
            self.bad.append(status)
        if edit_id in used:
            self.delays[edit_id] = now - acked
            del self.pending[edit_id]
        elif now - acked > GIVE_UP_S:
            self.missed.append(edit_id)
            del self.pending[edit_id]
        else:
            self.turn.append(edit_id)


def _watch(client: httpx.Client, proxy: str, acks: queue.Queue[Ack | None]) -> Watch:
    """Ask ``proxy`` about every acknowledged subject, round robin, until each is seen
    (bounded in time and in requests)."""
    watch = Watch(acks)
    deadline = time.monotonic() + RACE_DEADLINE_S
    while (watch.writing or watch.pending) and watch.reads < MAX_READS:
        if time.monotonic() > deadline:
            break
        watch.take()
        if watch.turn:
            watch.ask(client, proxy)
    watch.missed += list(watch.pending)
    return watch


def test_every_add_through_one_proxy_is_used_by_the_other_within_a_second(
    race: Race, embedder: MiniLMEmbedder
) -> None:
    names = [subject(i) for i in range(ADDS)]
    acks: queue.Queue[Ack | None] = queue.Queue()
    errors: list[str] = []
    writer = threading.Thread(target=_write, args=(race.writer, names, acks, errors), daemon=True)
    start = time.monotonic()
    with httpx.Client(timeout=60) as client:
        writer.start()
        watch = _watch(client, race.reader, acks)
    writer.join(timeout=60)
    took = time.monotonic() - start

    # Only the fact graph can have found them: none is among the nearest statements.
    memory = EditMemory.open(race.settings, embedder=embedder)
    names_of = {e.id: e.subject or "" for e in memory.edits()}
    k = EditorParams().k
    by_vector = [
        i
        for i in watch.delays
        if i in {h.edit.id for h in memory.search(question(names_of[i]), k=k)}
    ]

    delays = np.array(sorted(watch.delays.values()) or [np.inf])
    worst, p50, p95 = (float(np.max(delays)), *np.percentile(delays, [50, 95]))
    report = {
        "adds": len(watch.delays) + len(watch.missed),
        "write_errors": errors,
        "seen": len(watch.delays),
        "missed": watch.missed,
        "reads": watch.reads,
        "non_200": watch.bad,
        "seconds": took,
        "worst_s": worst,
        "p50_s": p50,
        "p95_s": p95,
        "refresh_interval_s": REFRESH_S,
        "found_by_vector_search": by_vector,
    }
    (race.out / "proxy_race.json").write_text(json.dumps(report, indent=2))
    print(
        f"proxy race: {report['adds']} adds in {took:.1f} s, {watch.reads} reads; visible in B "
        f"after worst {worst:.3f} s, p50 {p50:.3f} s, p95 {p95:.3f} s"
    )

    assert not by_vector, f"vector search alone finds {len(by_vector)} edits: {by_vector[:5]}"
    assert not writer.is_alive(), "the writer did not finish"
    assert not errors, f"adding through A failed: {errors}"
    assert report["adds"] == ADDS, f"only {report['adds']} of {ADDS} adds were acknowledged"
    assert not watch.bad, f"proxy B answered {watch.bad}"
    assert not watch.missed, f"never used by B within {GIVE_UP_S} s: {watch.missed}"
    assert worst < FRESH_WITHIN_S, f"slowest edit reached B after {worst:.3f} s"


def test_an_add_undone_through_one_proxy_stops_being_used_by_the_other_within_a_second(
    race: Race,
) -> None:
    with httpx.Client(timeout=60) as client:
        edit_id = add(client, race.writer, UNDONE)
        deadline = time.monotonic() + GIVE_UP_S
        while edit_id not in edits_used(client, race.reader, UNDONE)[1]:
            assert time.monotonic() < deadline, "the added edit never reached B"
        undone = client.post(f"{race.writer}/edits/undo", headers=HEADERS)
        acked = time.monotonic()
        assert undone.status_code == 200, undone.text
        assert undone.json()["removed"] == [edit_id]

        statuses: list[Outcome] = []
        while True:
            status, used = edits_used(client, race.reader, UNDONE)
            gone_after = time.monotonic() - acked
            statuses.append(status)
            if status == 200 and edit_id not in used:
                break
            assert gone_after < GIVE_UP_S, f"B still used the undone edit after {GIVE_UP_S} s"
    report = {"gone_after_s": gone_after, "reads": len(statuses), "outcomes": statuses}
    (race.out / "proxy_race_undo.json").write_text(json.dumps(report, indent=2))
    print(f"proxy race: undone edit gone from B after {gone_after:.3f} s, outcomes {statuses}")
    failed = [s for s in statuses if s != 200]
    assert not failed, f"B answered {failed} while its graph still held the undone edit"
    assert gone_after < FRESH_WITHIN_S, f"B used the undone edit for {gone_after:.3f} s"
