"""The wheel from a clean environment: built from this tree, installed with the proxy's
extra only (no torch, no llama.cpp, no matplotlib) into a fresh venv of the lowest and the
highest supported Python, then ``kme serve --upstream`` in front of a real llama.cpp
server, asked through the openai SDK from that venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import free_port, serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
PYENV = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
# The floor is pyproject's requires-python; the ceiling the newest CPython this machine's
# sources offer that every core dependency has wheels for.
PYTHONS = {"lowest": "3.11", "highest": "3.13"}
HEAVY = {"torch", "transformers", "accelerate", "llama-cpp-python", "matplotlib", "scipy"}


def interpreter(version: str) -> Path:
    if sys.version_info[:2] == tuple(map(int, version.split("."))):
        return Path(sys._base_executable)
    found = sorted(PYENV.glob(f"{version}.*/bin/python{version}"))
    if not found:
        pytest.fail(f"no Python {version} under {PYENV}: the supported range is tested on it")
    return found[-1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "-w", str(out), str(ROOT)], check=True, timeout=600)
    (built,) = out.glob("kme_rag-*.whl")
    return built


@pytest.fixture(scope="module", params=sorted(PYTHONS))
def core_venv(
    request: pytest.FixtureRequest, wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp(f"core-{request.param}") / "venv"
    python = interpreter(PYTHONS[request.param])
    subprocess.run([str(python), "-m", "venv", str(folder)], check=True, timeout=300)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"{wheel}[server]"], check=True, timeout=1200)
    yield folder


def test_the_core_venv_has_no_heavy_package(core_venv: Path) -> None:
    listed = subprocess.run(
        [str(core_venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert not names & HEAVY, names & HEAVY
    assert {"kme-rag", "chromadb", "onnxruntime", "openai", "fastapi"} <= names


def test_kme_serve_from_the_wheel_edits_one_answer_and_passes_another_through(
    core_venv: Path, llama_server: str, tmp_path: Path
) -> None:
    env = {
        "PATH": f"{core_venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KME_STORE": str(tmp_path / "store"),
        "KME_CACHE_DIR": str(tmp_path / "cache"),
        "KME_DATA_DIR": str(tmp_path / "no-data"),  # an installed kme_rag reads none
        "KME_UPSTREAM_FRAMING": "qa",  # the bundled Gemma is a base model
    }
    kme = str(core_venv / "bin" / "kme")
    edit = ["--subject", "Eiffel Tower", "--relation", "{} is located in the city of"]
    subprocess.run(
        [kme, "edit", "add", *edit, "--new", "Rome"],
        env=env,
        check=True,
        timeout=300,
    )
    port = free_port()
    command = [kme, "serve", "--upstream", llama_server, "--port", str(port)]
    client = textwrap.dedent(
        f"""
        import json, openai
        options = dict(model="gemma", max_tokens=8, temperature=0)
        def ask(base, question):
            sdk = openai.OpenAI(base_url=base, api_key="none", max_retries=0)
            out = sdk.chat.completions.create(
                messages=[{{"role": "user", "content": question}}], **options
            )
            return out.choices[0].message.content
        proxy = "http://127.0.0.1:{port}/v1"
        print(json.dumps({{
            "edited": ask(proxy, "In which city is the Eiffel Tower?"),
            "through": ask(proxy, "What is the capital of France?"),
            "direct": ask({llama_server!r}, "What is the capital of France?"),
        }}))
        """
    )
    python = str(core_venv / "bin" / "python")
    with serve(command, port, "/healthz", tmp_path / "proxy.log", timeout_s=180, env=env):
        done = subprocess.run(
            [python, "-c", client], env=env, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout)
    assert answers["edited"].startswith("Rome"), answers
    assert answers["through"] == answers["direct"] and "Rome" not in answers["direct"]
    assert not (tmp_path / "cache" / "embedder").exists()  # the wheel's graph, none built
