"""``kme demo`` stays quiet: llama.cpp's native log reaches ``logging``, not the terminal,
and a model that fails to load still raises an error that says why.

These load the real bundled model (about a second each), hence ``slow``.
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kme_rag.backends import LlamaCppBackend
from kme_rag.errors import ConfigurationError

pytestmark = pytest.mark.slow

# What `kme demo` does with the model: load it through the backend, ask, complete.
DEMO_PATH = textwrap.dedent(
    """
    from kme_rag.backends import LlamaCppBackend

    backend = LlamaCppBackend(n_threads=1)
    print("chat:", backend.chat([{"role": "user", "content": "What is the capital of France?"}],
                                max_tokens=8))
    print("complete:", backend.complete("The Eiffel Tower is in the city of", max_tokens=4))
    """
)
LLAMA_LINE = re.compile(r"llama_|ggml_|gguf_|print_info:|load_tensors:|^load:", re.MULTILINE)


def test_loading_and_asking_the_model_prints_no_llama_log() -> None:
    run = subprocess.run(
        [sys.executable, "-c", DEMO_PATH], capture_output=True, text=True, timeout=300
    )
    if run.returncode < 0:
        pytest.fail(f"the model call died of {signal.Signals(-run.returncode).name}")
    assert run.returncode == 0, run.stderr
    assert "chat:" in run.stdout and "complete:" in run.stdout
    assert not LLAMA_LINE.search(run.stdout), run.stdout
    assert not LLAMA_LINE.search(run.stderr), run.stderr


def test_the_llama_log_is_still_there_for_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kme_rag.backends.llama_cpp")
    LlamaCppBackend(n_threads=1).complete("Paris is in", max_tokens=1)
    lines = [r.getMessage() for r in caplog.records if r.name == "kme_rag.backends.llama_cpp"]
    assert any(line.startswith("llama_") for line in lines)
    assert all(r.levelno < logging.WARNING for r in caplog.records if r.name.endswith("cpp"))


def test_a_model_that_fails_to_load_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bin"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00not a model")
    with pytest.raises(ConfigurationError) as caught:
        _ = LlamaCppBackend(broken, n_threads=1).llm
    message = str(caught.value)
    assert str(broken) in message
    assert "error loading model" in message  # llama.cpp's reason, not only "failed to load"
