"""Nothing lost: SIGKILL in the middle of an import, and several processes on one server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings

WRITER = Path(__file__).with_name("writer.py")


def writer(settings: Settings, prefix: str, count: int, batch: int) -> subprocess.Popen[str]:
    env = {**os.environ, "KME_COLLECTION": settings.collection, "KME_STORE": str(settings.store)}
    if settings.chroma_url:
        env["KME_CHROMA_URL"] = settings.chroma_url
    return subprocess.Popen(
        [sys.executable, str(WRITER), prefix, str(count), str(batch)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_sigkill_mid_import_loses_no_reported_edit(
    tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    settings = Settings(store=tmp_path / "store", collection="crash_test")
    process = writer(settings, "Crash", 2000, 25)
    assert process.stdout is not None
    reported: list[str] = []
    for line in process.stdout:
        line = line.strip()
        if line.startswith("e_"):
            reported.append(line)
        if len(reported) >= 400:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    memory = EditMemory.open(settings, embedder=embedder)
    stored = {e.id for e in memory.edits()}
    assert set(reported) <= stored
    assert len(stored) < 2000, "the import was meant to be cut short"
    assert {e.id for e in memory.graph.edits()} == stored
    assert memory.search("Crash 17", k=1)[0].edit.subject == "Crash 17"


@pytest.mark.slow
def test_several_processes_share_one_store_through_the_server(
    chroma_url: str, tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    settings = Settings(chroma_url=chroma_url, collection="multi_process", store=tmp_path)
    processes = [writer(settings, f"Proc{n}", 60, 10) for n in range(3)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    reported = {line for out in outputs for line in out.split() if line.startswith("e_")}
    assert len(reported) == 180

    memory = EditMemory.open(settings, embedder=embedder)
    assert {e.id for e in memory.edits()} == reported
    assert len(memory.graph) == 180
