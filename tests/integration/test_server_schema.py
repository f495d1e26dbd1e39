"""schemathesis (its CLI, a bounded run: 25 examples an operation, fixed seed) against
the real proxy's /openapi.json: no input, however odd, gets a 500. The upstream is a
port nothing listens on, so calls that pass validation go through the editor and end in
an OpenAI-style 502 (``schemathesis_hooks.no_internal_error`` allows exactly that); the
edit admin API runs for real on its store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.server import create_app

from .conftest import free_port
from .proxy_helpers import running
from .test_server import ADMIN, proxy_settings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_schemathesis_finds_no_server_error(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    app = create_app(
        proxy_settings(tmp_path, f"http://127.0.0.1:{free_port()}/v1"), embedder=embedder
    )
    schemathesis = Path(sys.executable).parent / "schemathesis"
    with running(app) as url:
        command = [str(schemathesis), "run", f"{url.removesuffix('/v1')}/openapi.json"]
        command += ["--checks", "no_internal_error", "--max-examples", "25", "--seed", "7"]
        command += ["--header", f"Authorization: Bearer {ADMIN}", "--workers", "1", "--no-color"]
        hooks = {"SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks"}
        env = {**os.environ, **hooks, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(  # in tmp_path: schemathesis keeps its replay data in cwd
            command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path
        )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-4000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", report)
    assert generated is not None and int(generated[1]) > 500, report[-2000:]
    assert generated[1] == generated[2], report[-2000:]
    print(f"schemathesis: {generated[0]}")  # the figure the notes quote (pytest -s)
