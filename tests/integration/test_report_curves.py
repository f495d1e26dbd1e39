"""Scalability and retainability runners on a real store and the real scope classifier,
with a fixed-reply model function (the runners' bookkeeping, not the model, is tested)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kme_rag.backends import CallableBackend
from kme_rag.bench.curves import CurveParams, run_retainability, run_scalability
from kme_rag.bench.harness import Case, counterfact_cases
from kme_rag.editor import KnowledgeEditor
from kme_rag.memory.edit import parse_edit
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings


class Counter:
    """A model function answering a fixed text, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, prompt: str) -> str:
        self.calls += 1
        return " the same answer."


@pytest.fixture
def model() -> Counter:
    return Counter()


@pytest.fixture
def editor(tmp_path: Path, embedder: MiniLMEmbedder, model: Counter) -> KnowledgeEditor:
    memory = EditMemory.open(Settings(store=tmp_path / "store"), embedder=embedder)
    return KnowledgeEditor(CallableBackend(model), memory)


def case(case_id: str, subject: str, new: str) -> Case:
    edit = parse_edit({"subject": subject, "relation": "{} is the capital of", "target_new": new})
    prompt = f"{subject} is the capital of"
    return Case(case_id, edit, "cloze", prompt, f"Everyone agrees {prompt}", "Bern is in")


def test_scalability_grows_one_store_and_probes_only_stored_edits(
    editor: KnowledgeEditor, model: Counter, data_dir: Path
) -> None:
    cases = counterfact_cases(data_dir / "counterfact" / "counterfact-edit.json", 12)
    points = list(run_scalability(editor, cases, CurveParams(sizes=(1, 4, 12), probe_n=4)))
    assert [p["edits_stored"] for p in points] == [1, 4, 12]
    assert [p["probed"] for p in points] == [1, 4, 4]
    assert len(editor.memory) == 12
    for p in points:  # in scope: the new object is prefilled; out of scope: the model's own
        assert p["counts"]["efficacy"] == p["probed"]
        assert p["counts"]["locality_same"] == p["probed"]
    # the unedited answers were asked once (4 cases x 3 probes), not once per store size
    edited_calls = sum(3 * p["probed"] for p in points)
    assert model.calls == 4 * 3 + edited_calls


def test_retainability_marks_edits_a_later_edit_superseded(editor: KnowledgeEditor) -> None:
    cases = [case("a", "Oslo", "Peru"), case("b", "Lima", "Chad"), case("c", "Oslo", "Fiji")]
    points = list(run_retainability(editor, cases, CurveParams(sizes=(1, 2, 3), probe_n=2)))
    assert [p["edits_applied"] for p in points] == [1, 2, 3]
    assert [p["fixed_probe_set"] for p in points] == [False, True, True]
    last = points[-1]
    assert last["superseded"] == ["a"]  # Oslo's later edit wins: "Fiji", not "Peru"
    assert last["counts"]["efficacy"] == 1  # only b still answers its own new object
    active = last["active"]["counts"]
    assert (active["cases"], active["efficacy"]) == (1, 1)  # the report's "active" view
    assert len(last["add_seconds"]) == 1  # one add since the previous checkpoint


def test_retainability_applies_edits_through_the_given_function(
    editor: KnowledgeEditor,
) -> None:
    applied: list[str] = []
    cases = [case("a", "Oslo", "Peru"), case("b", "Lima", "Chad")]
    params = CurveParams(sizes=(1, 2), probe_n=2)
    points = list(
        run_retainability(editor, cases, params, apply=lambda c: applied.append(c.case_id))
    )
    assert applied == ["a", "b"]
    assert len(editor.memory) == 0  # nothing went to the memory
    assert points[-1]["counts"]["efficacy"] == 0  # no edit stored, so none is answered
