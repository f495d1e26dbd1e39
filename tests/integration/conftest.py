"""Integration fixtures: a real Chroma server on loopback and stores on both clients.

The store test-suite runs twice: on an embedded ``PersistentClient`` in ``tmp_path`` and
on an ``HttpClient`` talking to a real ``chroma run`` server this fixture starts (or the
one ``$KME_TEST_CHROMA_URL`` names).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kme_rag.backends import bundled_model_path
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings

THREADS = os.cpu_count() or 1  # as the local backend, so both compute the same logits


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


@contextmanager
def serve(
    command: list[str],
    port: int,
    ready_path: str,
    log: Path,
    timeout_s: float = 60,
    env: dict[str, str] | None = None,
) -> Iterator[None]:
    """Run a server process until the block ends, once ``ready_path`` answers 200
    (``env``: its whole environment; ours when None)."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_http(f"http://127.0.0.1:{port}{ready_path}", process, timeout_s)
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server on loopback for the whole run."""
    given = os.environ.get("KME_TEST_CHROMA_URL")
    if given:
        yield given
        return
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    command = [chroma, "run", "--path", str(folder / "data"), "--host", "127.0.0.1"]
    with serve([*command, "--port", str(port)], port, "/api/v2/heartbeat", folder / "log"):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's own OpenAI-compatible server with the bundled model, on loopback."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path())]
    options = {
        "host": "127.0.0.1",
        "port": port,
        "n_threads": THREADS,
        "n_threads_batch": THREADS,
        "n_ctx": 2048,
        "model_alias": "gemma",
    }
    command += [part for name, value in options.items() for part in (f"--{name}", str(value))]
    log = tmp_path_factory.mktemp("llama-server") / "log"
    with serve(command, port, "/v1/models", log, timeout_s=120):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(params=["embedded", "http"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh, empty store: a folder, or a new collection on the server."""
    collection = f"test_{uuid.uuid4().hex[:12]}"
    if request.param == "http":
        url = request.getfixturevalue("chroma_url")
        return Settings(chroma_url=url, collection=collection, store=tmp_path / "unused")
    return Settings(store=tmp_path / "store", collection=collection)


@pytest.fixture
def memory(settings: Settings, embedder: MiniLMEmbedder) -> EditMemory:
    return EditMemory.open(settings, embedder=embedder)
