"""Running the real proxy for tests: in this process (uvicorn on a thread, loopback) or
as its own process (``python -m kme_rag.server serve``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from .conftest import free_port, wait_http


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` on a loopback port until the block ends; yields its ``/v1`` URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the proxy did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def proxy_processes(
    count: int, env: dict[str, str], logs: Path, upstream: str
) -> Iterator[list[str]]:
    """``count`` proxies, each a process of its own (``python -m kme_rag.server serve``),
    with ``env`` (``KME_*``) added to ours; yields their ``/v1`` URLs once all answer."""
    ports = [free_port() for _ in range(count)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i, port in enumerate(ports):
            command = [sys.executable, "-m", "kme_rag.server", "serve", "--port", str(port)]
            with (logs / f"proxy-{i}.log").open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [*command, "--upstream", upstream],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, **env},
                    )
                )
        for port, process in zip(ports, processes, strict=True):
            wait_http(f"http://127.0.0.1:{port}/healthz", process, timeout_s=180)
        yield [f"http://127.0.0.1:{port}/v1" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
