"""WeightEditor on a tiny Llama with a word tokenizer: write, persist, reopen, undo, route,
and the benchmark rows built on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
import torch

from kme_rag.bench.harness import Case
from kme_rag.bench.weights import WeightBenchParams, run_weight_cases, summarise_weights
from kme_rag.errors import NothingToUndoError, WhiteboxError
from kme_rag.memory.edit import Edit
from kme_rag.whitebox.architectures import architecture_of, get_module, read_projection
from kme_rag.whitebox.deltastore import DeltaStore
from kme_rag.whitebox.edit_requests import CONTEXT_PREFIXES, probability_metrics
from kme_rag.whitebox.loading import LoadedModel
from kme_rag.whitebox.session import Method, WeightEditor
from tests.edits import EIFFEL, LOUVRE, TINY_PARAMS
from tests.whitebox.tiny import all_equal, parameters_snapshot, tiny_llama
from tests.whitebox.words import word_tokenizer

# Prompts end at the subject: in a random tiny model attention carries little from earlier
# positions, so only then does one layer's edit reach the prediction (see tiny.py).
TEXTS = (
    "The city of Eiffel Tower Rome Paris",
    "The city of Louvre",
    "Tower Louvre is a museum monument",
    *CONTEXT_PREFIXES,
)


def _loaded(seed: int = 0) -> LoadedModel:
    model = tiny_llama(seed)
    model.config.max_position_embeddings = 64
    tokenizer = word_tokenizer(TEXTS)
    return LoadedModel(model, tokenizer, architecture_of(model), "test:tiny-llama", Path("tiny"))


def _editor(root: Path, seed: int = 0) -> WeightEditor:
    loaded = _loaded(seed)
    store = DeltaStore(root, loaded.identity)
    editor = WeightEditor(loaded, store, corpus=(), cache_dir=root / "cache", params=TINY_PARAMS)
    editor.reapply()
    return editor


def _margin(editor: WeightEditor, edit: Edit) -> float:
    assert edit.target_new and edit.target_true
    scores = probability_metrics(
        editor.loaded.model,
        editor.loaded.tokenizer,
        edit.cloze(),
        edit.target_new,
        edit.target_true,
    )
    return scores.new.mean - scores.true.mean


def test_rome_write_persists_and_undo_restores_the_weights_exactly(tmp_path: Path) -> None:
    editor = _editor(tmp_path)
    pristine = parameters_snapshot(editor.loaded.model)
    before = _margin(editor, EIFFEL)

    (record,) = editor.write([EIFFEL], "rome")

    assert _margin(editor, EIFFEL) > max(before, 0.0)  # the new object now wins
    assert editor.edit_ids() == {EIFFEL.id}
    manifest = json.loads((editor.store.folder / "manifest.json").read_text())
    assert [d["edit_ids"] for d in manifest["deltas"]] == [[EIFFEL.id]]
    assert record.method == "rome" and (editor.store.folder / record.file).exists()

    assert editor.undo().id == record.id
    assert all_equal(editor.loaded.model, pristine)
    assert editor.store.records() == [] and editor.edit_ids() == frozenset()
    with pytest.raises(NothingToUndoError):
        editor.undo()


def test_reopening_reapplies_the_stored_deltas_bit_for_bit(tmp_path: Path) -> None:
    first = _editor(tmp_path)
    first.write([EIFFEL, LOUVRE], "rome")  # two deltas, one per edit
    edited = parameters_snapshot(first.loaded.model)

    reopened = _editor(tmp_path)  # pristine weights from the same seed, same store
    assert [r.edit_ids for r in reopened.records] == [(EIFFEL.id,), (LOUVRE.id,)]
    assert all_equal(reopened.loaded.model, edited)

    reopened.undo()
    reopened.undo()
    assert all_equal(reopened.loaded.model, parameters_snapshot(_loaded().model))


def test_memit_writes_one_delta_for_the_batch(tmp_path: Path) -> None:
    editor = _editor(tmp_path)
    pristine = parameters_snapshot(editor.loaded.model)
    margins = [_margin(editor, e) for e in (EIFFEL, LOUVRE)]

    (record,) = editor.write([EIFFEL, LOUVRE], "memit")

    assert record.edit_ids == (EIFFEL.id, LOUVRE.id)
    assert sum(_margin(editor, e) for e in (EIFFEL, LOUVRE)) > sum(margins)
    paths = {layer.path for layer in editor.store.load(record).layers}
    assert paths == {"model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"}
    editor.undo()
    assert all_equal(editor.loaded.model, pristine)


def test_deltas_are_never_replayed_onto_other_weights(tmp_path: Path) -> None:
    editor = _editor(tmp_path)
    editor.write([EIFFEL], "rome")
    other = DeltaStore(tmp_path, "test:another-model")
    assert other.records() == []  # its own folder
    manifest = editor.store.folder / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "model": "test:another-model"}))
    with pytest.raises(WhiteboxError, match="belongs to model"):
        editor.store.records()


def test_a_tampered_delta_file_is_refused(tmp_path: Path) -> None:
    editor = _editor(tmp_path)
    (record,) = editor.write([EIFFEL], "rome")
    path = editor.store.folder / record.file
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(WhiteboxError, match="sha256"):
        _editor(tmp_path)


def test_statements_cannot_be_written_into_weights(tmp_path: Path) -> None:
    editor = _editor(tmp_path)
    with pytest.raises(WhiteboxError, match="structured edit"):
        editor.write([Edit(statement="The Louvre moved to Lyon.")], "rome")
    assert editor.records == []


def test_the_weights_backend_answers_from_the_edited_weights(tmp_path: Path) -> None:
    editor = _editor(tmp_path)
    prompt = EIFFEL.cloze()
    before = editor.backend.complete(prompt, max_tokens=1)
    editor.write([EIFFEL], "rome")
    after = editor.backend.complete(prompt, max_tokens=1)
    assert after.strip() == "Rome" != before.strip()
    batch = editor.backend.complete_many([prompt, LOUVRE.cloze()], max_tokens=1)
    assert batch[0] == after  # left padding does not change the answer
    projection = get_module(editor.loaded.model, "model.layers.1.mlp.down_proj")
    assert read_projection(projection).dtype == torch.float32


def _case(case_id: str, edit: Edit) -> Case:
    return Case(case_id, edit, "cloze", edit.cloze(), edit.cloze(), "The city of", "Paris")


@pytest.mark.parametrize(("method", "edits_mode"), [("memit", "all"), ("rome", "one")])
def test_bench_rows_score_and_answer_every_case_whatever_the_call_size(
    tmp_path: Path, method: Method, edits_mode: Literal["one", "all"]
) -> None:
    cases = [_case("0", EIFFEL), _case("1", LOUVRE)]

    def rows(batch: int) -> list[dict[str, Any]]:
        editor = _editor(tmp_path / f"{method}-{batch}")
        pristine = parameters_snapshot(editor.loaded.model)
        params = WeightBenchParams(
            method=method, edits_mode=edits_mode, max_tokens=1, answer_batch=batch
        )
        out = list(run_weight_cases(cases, editor, params))
        if edits_mode == "one":  # every case was undone before the next
            assert all_equal(editor.loaded.model, pristine)
        return out

    one, batched = rows(1), rows(3)
    assert [r["case_id"] for r in batched] == ["0", "1"]
    for a, b in zip(one, batched, strict=True):
        assert a["probability"] == b["probability"]
        for probe in ("prompt", "paraphrase", "locality"):
            assert (a[probe]["text"], a[probe]["reference"]) == (
                b[probe]["text"],
                b[probe]["reference"],
            )
    first = batched[0]
    assert first["probability"]["logprob_new"] > first["unedited_probability"]["logprob_new"]
    assert first["prompt"]["reference"].strip() != "Rome"
    if method == "rome":  # the tiny MEMIT raises P(new) without always making it the top word
        assert first["prompt"]["text"].strip() == "Rome"
    calls = 6 if edits_mode == "all" else 3  # both cases in one call; one case per call
    assert batched[0]["prompt"]["batch_rows"] == calls and one[0]["prompt"]["batch_rows"] == 3
    summary = summarise_weights(batched)
    assert summary["generation_cases"] == 2 and summary["latency_ms"]["batch_rows"] == calls
