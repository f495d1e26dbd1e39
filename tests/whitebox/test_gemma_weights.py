"""Slow tests on the real Gemma 3 270M: ROME with corpus statistics, the edited model
exported as GGUF and served by llama.cpp, and the editor's weights routes.

The statistics use a small WikiText sample (the real default is 4,000 windows, ~10 min
here) so the test stays a few minutes; it is what makes the edit local enough for the
neighbourhood assertions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kme_rag.backends import LlamaCppBackend, bundled_model_path, cut_at_stop
from kme_rag.editor import EditorParams, KnowledgeEditor
from kme_rag.memory.edit import Edit
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.scope.similarity import SimilarityScope
from kme_rag.settings import Settings
from kme_rag.whitebox.deltastore import DeltaStore
from kme_rag.whitebox.gguf_export import export_gguf
from kme_rag.whitebox.loading import LoadedModel
from kme_rag.whitebox.second_moments import StatsParams, wikitext_corpus
from kme_rag.whitebox.session import WeightEditor, WeightEditParams
from tests.edits import GEMMA_EIFFEL as EIFFEL
from tests.edits import GEMMA_PROMPT as PROMPT

pytestmark = pytest.mark.slow

NEIGHBOURS = (  # the unedited model's objects: Paris, Rome, New York
    "The Louvre is located in the city of",
    "The Colosseum is located in the city of",
    "The Statue of Liberty is located in the city of",
)


def _object(text: str) -> str:
    """The answer's first clause, the object it states ("Paris" of " Paris, France. It")."""
    return cut_at_stop(text, (",", ".", "\n")).strip()


@pytest.fixture
def weights(gemma: LoadedModel, data_dir: Path, tmp_path: Path) -> WeightEditor:
    params = WeightEditParams(stats=StatsParams(samples=256, max_length=128))
    return WeightEditor(
        gemma,
        DeltaStore(tmp_path / "weights", gemma.identity),
        corpus=wikitext_corpus(data_dir),
        cache_dir=tmp_path / "cache",
        params=params,
    )


def _llama(path: Path) -> LlamaCppBackend:
    return LlamaCppBackend(path, n_threads=1, n_threads_batch=1)


def test_llama_cpp_serves_the_exported_edit_as_the_torch_weights_do(
    weights: WeightEditor, tmp_path: Path
) -> None:
    """The export is faithful: llama.cpp on it states the new object, and on every
    neighbourhood prompt the object the edited torch weights state; an export of the
    unedited weights states the unedited objects. (Whether ROME leaves a neighbour alone is
    ROME's locality, measured by the benchmark: on this model it moves some — here the
    Statue of Liberty to Rome with a 256-window C.)"""
    layer = weights.rome_params().layer
    path = weights.loaded.architecture.projection_path(layer)
    model = weights.loaded.model
    pristine = tmp_path / "pristine.gguf"  # the same tensor replaced, unedited: isolates the edit
    export_gguf(bundled_model_path(), model, [path], pristine)
    weights.write([EIFFEL], "rome")
    edited = tmp_path / "edited.gguf"
    written = export_gguf(bundled_model_path(), model, [path], edited)
    assert written == [f"blk.{layer}.ffn_down.weight"]
    torch_edited = {p: _object(weights.backend.complete(p, max_tokens=8)) for p in NEIGHBOURS}
    weights.undo()
    torch_unedited = {p: _object(weights.backend.complete(p, max_tokens=8)) for p in NEIGHBOURS}

    before, after = _llama(pristine), _llama(edited)
    assert "Rome" in after.complete(PROMPT, max_tokens=6)
    assert "Paris" in before.complete(PROMPT, max_tokens=6)
    for prompt in NEIGHBOURS:
        assert _object(after.complete(prompt, max_tokens=8)) == torch_edited[prompt]
        assert _object(before.complete(prompt, max_tokens=8)) == torch_unedited[prompt]


def test_weights_policy_answers_every_question_from_the_edited_weights(
    weights: WeightEditor, embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    memory = EditMemory.open(Settings(store=tmp_path / "store"), embedder=embedder)
    stored = memory.add(EIFFEL)
    weights.write([stored], "rome")
    editor = KnowledgeEditor(
        LlamaCppBackend(n_threads=1, n_threads_batch=1),
        memory,
        weights=weights,
        params=EditorParams(weights_policy="weights"),
    )
    answer = editor.complete(PROMPT)
    assert answer.route == "weights" and answer.edit_ids == [stored.id]
    assert "Rome" in answer.text
    assert answer.text == weights.backend.complete(PROMPT, max_tokens=editor.params.max_tokens)
    other = editor.ask("What is the capital of Japan?")
    assert other.route == "weights" and other.edits == ()  # the edited model, no edit in scope
    weights.undo()


def test_fallback_writes_an_edit_the_in_context_route_misses(
    weights: WeightEditor, embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    memory = EditMemory.open(Settings(store=tmp_path / "store"), embedder=embedder)
    llama = LlamaCppBackend(n_threads=1, n_threads_batch=1)
    # a scope so strict that nothing is in scope: the in-context route misses every probe
    editor = KnowledgeEditor(
        llama,
        memory,
        scope=SimilarityScope(threshold=1.01),
        weights=weights,
        params=EditorParams(weights_policy="fallback"),
    )
    check = editor.add_edit(EIFFEL, ["Which city is the Eiffel Tower in?"])
    assert check.written and not check.passed
    assert [text for text, _, _ in check.probes] == [PROMPT, "Which city is the Eiffel Tower in?"]
    assert weights.edit_ids() == {check.edit.id}

    answer = editor.complete(PROMPT)  # names the written edit's subject → the weights
    assert answer.route == "weights" and "Rome" in answer.text
    unrelated = editor.complete("The capital of Japan is")
    assert unrelated.route == "passthrough"
    assert unrelated.text == llama.complete("The capital of Japan is", max_tokens=24)

    strict_free = KnowledgeEditor(
        llama, memory, weights=weights, params=EditorParams(weights_policy="fallback")
    )
    passed = strict_free.add_edit(
        Edit(subject="Japan", relation="capital", prompt="The capital of {} is", target_new="Kyoto")
    )
    assert passed.passed and not passed.written  # the in-context route states Kyoto
    assert len(weights.records) == 1
    weights.undo()


def _kme(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kme_rag", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_whitebox_cli_writes_reopens_exports_and_undoes(
    converted: tuple[LoadedModel, float, Path], tmp_path: Path
) -> None:
    """Each command is a new process: the stored delta is reapplied on every open."""
    env = {
        **os.environ,
        "KME_STORE": str(tmp_path / "store"),
        "KME_CACHE_DIR": str(converted[2]),  # the session's converted Gemma
        "KME_TORCH_THREADS": "1",
    }
    env.pop("KME_CHROMA_URL", None)
    edit_id = _kme(
        env,
        "edit",
        "add",
        "--subject",
        "Eiffel Tower",
        "--relation",
        "city",
        "--prompt",
        "The {} is located in the city of",
        "--new",
        "Rome",
        "--old",
        "Paris",
    ).strip()
    applied = _kme(env, "whitebox", "apply", "--identity-stats")
    assert "rome" in applied and edit_id in applied
    assert "nothing to write" in _kme(env, "whitebox", "apply", "--identity-stats")
    assert edit_id in _kme(env, "whitebox", "list")
    out = tmp_path / "edited.gguf"
    assert "blk.3.ffn_down.weight" in _kme(env, "whitebox", "export", str(out))
    assert "Rome" in _llama(out).complete(PROMPT, max_tokens=4)
    assert "undid" in _kme(env, "whitebox", "undo")
    assert _kme(env, "whitebox", "list").strip() == ""
