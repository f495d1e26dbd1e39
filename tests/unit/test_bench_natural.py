"""The natural set's figures, its loader and the shipped set's shape (no model)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from kme_rag.bench.natural import (
    DEFAULT_SET,
    load_natural,
    names_other_subject,
    prefilled,
    summarise_natural,
)
from kme_rag.editor import Answer
from kme_rag.errors import ValidationError
from kme_rag.memory.edit import Edit

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / DEFAULT_SET


def _q(kind: str, text: str, reference: str, route: str = "passthrough", **extra: Any) -> dict:
    return {
        "kind": kind,
        "question": f"{kind}?",
        "relation": None,
        "text": text,
        "reference": reference,
        "route": route,
        "edits": [],
        "prefilled": False,
        "names_other_subject": False,
        "latency_ms": 10.0,
        "reference_ms": 5.0,
        **extra,
    }


def _rows() -> list[dict]:
    france = {
        "case_id": "nat-1",
        "relation": "capital",
        "target_true": "Paris",
        "target_new": "Lyon",
        "questions": [
            _q("formal", "Lyon", "Paris", "ike", prefilled=True),  # efficacy: yes
            _q("formal", "Paris is the capital.", "Paris"),  # generality formal: no, stale
            _q("casual", "Lyon", "Paris", "ike", prefilled=True),
            _q("casual", "It is Lyon, not Paris.", "Paris", "multihop"),  # generated, stale
            _q("chat", "Paris", "Paris"),  # missed: stale
            _q("same_subject", "French", "French"),  # kept
            _q("same_subject", "Lyon, Europe", "Europe", "ike"),  # changed, leaked
            _q("neighbour", "Berlin", "Berlin"),
            _q("neighbour", "Bonn", "Berlin", names_other_subject=True),  # changed, flagged
        ],
    }
    tokyo = {
        "case_id": "nat-2",
        "relation": "country",
        "target_true": "Japan",
        "target_new": "China",
        "questions": [
            _q("formal", "Japan", "Japan"),  # efficacy: no, stale
            _q("formal", "China", "Japan", "ike", prefilled=True),
            _q("casual", "China", "Japan", "ike", prefilled=True),
            _q("casual", "China", "Japan", "ike", prefilled=True),
            _q("chat", "China", "Japan", "ike"),  # generated: not prefilled
            _q("same_subject", "14 million", "14 million"),
            _q("same_subject", "Kanto", "Kanto"),
            _q("neighbour", "France", "France"),
            _q("neighbour", "China", "China"),  # the new object, but the model's own answer
        ],
    }
    return [france, tokyo]


def test_the_first_formal_question_is_efficacy_and_the_rest_generality() -> None:
    figures = summarise_natural(_rows())["figures"]
    assert (figures["efficacy"]["k"], figures["efficacy"]["n"]) == (1, 2)
    assert (figures["generality_formal"]["k"], figures["generality_formal"]["n"]) == (1, 2)
    assert (figures["generality_casual"]["k"], figures["generality_casual"]["n"]) == (4, 4)
    assert (figures["generality_chat"]["k"], figures["generality_chat"]["n"]) == (1, 2)
    assert (figures["in_scope_all"]["k"], figures["in_scope_all"]["n"]) == (7, 10)


def test_stale_counts_the_old_object_in_any_in_scope_answer() -> None:
    stale = summarise_natural(_rows())["figures"]["stale"]
    assert (stale["k"], stale["n"]) == (4, 10)  # "Paris" x3 (one beside "Lyon"), "Japan"


def test_locality_is_an_identical_answer_and_a_leak_a_new_object_the_model_did_not_say() -> None:
    figures = summarise_natural(_rows())["figures"]
    same = figures["locality_same_subject"]
    assert (same["k"], same["n"]) == (3, 4)
    assert (figures["leak_same_subject"]["k"], figures["leak_same_subject"]["n"]) == (1, 4)
    assert (figures["locality_neighbour"]["k"], figures["locality_neighbour"]["n"]) == (3, 4)
    assert (figures["leak_neighbour"]["k"], figures["leak_neighbour"]["n"]) == (0, 4)
    clean = figures["locality_neighbour_unrelated"]
    assert (clean["k"], clean["n"]) == (3, 3)


def test_every_rate_carries_a_wilson_interval_around_it() -> None:
    for name, value in summarise_natural(_rows())["figures"].items():
        assert value["low"] <= value["rate"] <= value["high"], name
    assert summarise_natural([])["figures"]["efficacy"]["rate"] is None


def test_correct_answers_split_by_where_the_new_object_came_from() -> None:
    routing = summarise_natural(_rows())["routing_diagnostic"]
    assert routing["correct_by_source"] == {"prefilled": 5, "graph_walk": 1, "generated": 1}
    assert (routing["generated_correct"]["k"], routing["generated_correct"]["n"]) == (1, 10)
    assert (routing["routed_in_scope"]["k"], routing["routed_in_scope"]["n"]) == (7, 10)


def test_counts_and_routes_are_per_question_kind() -> None:
    summary = summarise_natural(_rows())
    assert summary["counts"]["edits"] == 2
    assert summary["counts"]["relations"] == 2
    assert summary["counts"]["questions"] == {
        "formal": 4,
        "casual": 4,
        "chat": 2,
        "same_subject": 4,
        "neighbour": 4,
    }
    assert summary["counts"]["names_other_subject"] == {"same_subject": 0, "neighbour": 1}
    assert summary["routes"]["casual"] == {"ike": 3, "multihop": 1}
    assert summary["latency_ms"]["p50"] == 10.0
    assert summary["latency_ms"]["unedited_p50"] == 5.0


def test_prefilled_means_the_prompt_ends_with_the_new_object() -> None:
    edit = Edit(subject="France", relation="capital", target_new="Lyon")
    assert prefilled(Answer("Lyon", "ike", (edit,), sent="New Fact: ...\nA: Lyon"))
    assert not prefilled(Answer("Lyon", "ike", (edit,), sent="New Fact: ...\nA:"))
    assert not prefilled(Answer("Lyon", "multihop", (edit,), sent="q1\nq2 Lyon"))
    assert not prefilled(Answer("Paris", "passthrough"))


def test_a_question_naming_another_stored_subject_is_flagged() -> None:
    france = Edit(subject="France", relation="capital", target_new="Lyon")
    japan = Edit(subject="Japan", relation="capital", target_new="Osaka")
    assert names_other_subject("Is Japan bigger than France?", france, [france, japan])
    assert not names_other_subject("What do people eat in France?", france, [france, japan])


def _record(**changes: Any) -> dict[str, Any]:
    record = {
        "id": "nat-001",
        "subject": "France",
        "relation": "capital",
        "relation_id": "P36",
        "prompt": "The capital of {} is",
        "target_true": "Paris",
        "target_new": "Lyon",
        "subject_aliases": [],
        "questions": {"formal": ["a?", "b?"], "casual": ["c", "d"], "chat": ["e"]},
        "same_subject": [{"question": "f?", "relation": "continent"}],
        "neighbours": ["g?"],
    }
    return {**record, **changes}


def test_the_loader_builds_one_edit_and_its_questions_in_order(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(_record()) + "\n")
    (case,) = load_natural(path)
    assert case.edit.cloze() == "The capital of France is"
    assert [q.kind for q in case.questions] == [
        "formal",
        "formal",
        "casual",
        "casual",
        "chat",
        "same_subject",
        "neighbour",
    ]
    assert case.questions[5].relation == "continent"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"neighbours": []}, "neighbours"),
        ({"questions": {"formal": ["a?"], "casual": ["c"]}}, "questions.chat"),
        ({"same_subject": [{"question": "f?"}]}, "same_subject"),
        ({"target_new": ""}, "target_new"),
    ],
)
def test_the_loader_names_what_is_wrong(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(_record(**changes)) + "\n")
    with pytest.raises(ValidationError, match=message):
        load_natural(path)


def test_the_shipped_set_has_the_shape_the_issue_asks_for() -> None:
    cases = load_natural(SHIPPED)
    assert len(cases) >= 100
    assert len({c.edit.relation for c in cases}) >= 15
    subjects = [c.edit.key[0] for c in cases if c.edit.key]
    assert len(subjects) == len(set(subjects)), "one edit per subject"
    for case in cases:
        kinds = [q.kind for q in case.questions]
        assert kinds.count("formal") >= 2, case.case_id
        assert kinds.count("casual") >= 2, case.case_id
        assert kinds.count("chat") >= 1, case.case_id
        assert kinds.count("same_subject") >= 2, case.case_id
        assert kinds.count("neighbour") >= 2, case.case_id
        same = {q.relation for q in case.questions if q.kind == "same_subject"}
        assert case.edit.relation not in same, case.case_id


def test_the_shipped_set_matches_the_sha256_its_readme_records() -> None:
    readme = (SHIPPED.parent / "README.md").read_text(encoding="utf-8")
    recorded = re.search(r"sha256 \(natural-v1\.jsonl\): ([0-9a-f]{64})", readme)
    assert recorded is not None
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == recorded.group(1)


def test_generated_answers_are_scored_beside_the_routed_ones() -> None:
    rows = _rows()
    assert "generated_efficacy" not in summarise_natural(rows)["figures"]  # none asked
    gen = {"formal": ["Lyon, of course", "Paris"], "casual": ["lyon", "Paris or Lyon"]}
    for row in rows[:1]:
        for item in row["questions"]:
            if item["kind"] in gen and gen[item["kind"]]:
                item["generated"] = {"text": gen[item["kind"]].pop(0), "route": "ike"}
    figures = summarise_natural(rows)["figures"]
    assert figures["generated_efficacy"]["k"] == 1 and figures["generated_efficacy"]["n"] == 1
    assert (
        figures["generated_generality_formal"]["k"],
        figures["generated_generality_formal"]["n"],
    ) == (0, 1)
    assert figures["generated_generality_casual"]["k"] == 2
    assert figures["generated_stale"]["k"] == 2 and figures["generated_stale"]["n"] == 4
