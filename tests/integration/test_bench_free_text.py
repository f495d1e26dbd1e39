"""The free-text modes of the benchmarks on a real store and the real reader: CounterFact
cases stored only as their sentences (``kme bench counterfact --edits-as sentence``) and
MQuAKE cases only as their passages (``kme bench mquake --passages``). The answering is
stubbed (no model): what is checked is what gets stored, read back and undone. Sentences
written for these tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from kme_rag.backends import CallableBackend
from kme_rag.bench.harness import Case, run_cases, sentence_of
from kme_rag.bench.mquake_metrics import Hop, MquakeCase, run_mquake
from kme_rag.editor import Answer
from kme_rag.memory.edit import parse_edit
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings


class _Editor:
    def complete(self, text: str) -> Answer:
        return Answer(" edited", "ike", sent=text)


def _case(i: int, subject: str, template: str, new: str) -> Case:
    edit = parse_edit({"subject": subject, "relation": template, "target_new": new})
    prompt = template.format(subject)
    return Case(str(i), edit, "cloze", prompt, prompt, "Oslo is the capital of")


CASES = [
    _case(0, "Pieter Claes", "The mother tongue of {} is", "Walloon"),
    _case(1, "Brightwater Labs", "{} is headquartered in", "Denver"),
]


@pytest.fixture
def memory(tmp_path: Path, embedder: MiniLMEmbedder) -> EditMemory:
    return EditMemory.open(Settings(store=tmp_path / "store"), embedder=embedder)


def _asked(memory: EditMemory, mode: Literal["one", "all"]) -> list[dict[str, Any]]:
    backend = CallableBackend(lambda prompt: " raw")
    editor: Any = _Editor()
    asked = run_cases(
        CASES, backend, memory, editor, edits_mode=mode, max_tokens=4, edits_as="sentence"
    )
    return list(asked)


def test_a_case_stored_as_its_sentence_is_read_into_its_fact(memory: EditMemory) -> None:
    assert sentence_of(CASES[0]) == "The mother tongue of Pieter Claes is Walloon."
    rows = _asked(memory, "all")
    assert [r["read"]["right"] for r in rows] == [True, True]
    stored = {(e.subject, e.relation_id, e.target_new) for e in memory.graph.edits()}
    assert stored == {("Pieter Claes", "P103", "Walloon"), ("Brightwater Labs", "P159", "Denver")}
    assert {e.derived_from for e in memory.graph.edits()} == {sentence_of(c) for c in CASES}


def test_one_at_a_time_each_sentence_is_undone_after_its_case(memory: EditMemory) -> None:
    rows = _asked(memory, "one")
    assert [r["read"]["facts"][0][2] for r in rows] == ["Walloon", "Denver"]
    assert memory.graph.edits() == []


def _mquake_case() -> MquakeCase:
    edit = parse_edit({"subject": "Quillon Games", "relation": "owner", "target_new": "Nintendo"})
    passage = (
        "Quillon Games is now owned by Nintendo. The studio moved its headquarters to "
        "Kyoto, where it employs 300 people."
    )
    hop = Hop("Who owns Quillon Games?", "P127", ("Nintendo",), True)
    return MquakeCase(
        "q1", (edit,), ("Who founded the owner of Quillon Games?",), ("Fusajiro Yamauchi",),
        ("Someone",), 2, "P112", (hop,), (passage,),
    )  # fmt: skip


def test_a_mquake_case_stored_as_its_passage(memory: EditMemory) -> None:
    asked: list[str] = []

    def answer(question: str) -> tuple[str | None, dict[str, Any]]:
        asked.append(question)
        facts = {(e.subject, e.target_new) for e in memory.graph.edits()}
        return ("Nintendo" if ("Quillon Games", "Nintendo") in facts else "?"), {}

    case = _mquake_case()
    rows = list(
        run_mquake([case], answer, memory, edits_mode="one", edits_as="passage", single_hop=True)
    )
    assert asked == [*case.questions, "Who owns Quillon Games?"]
    assert rows[0]["edited_hops"][0]["right"]  # answered while the passage was stored
    assert memory.graph.edits() == [] and memory.edits() == []  # undone after the case
