from __future__ import annotations

from typing import Any

import pytest

from kme_rag.evaluation import contains_answer, normalise_answer, summarise


@pytest.mark.parametrize(
    ("answer", "target", "hit"),
    [
        (" English, and also French", "English", True),
        ("The answer is the United States.", "United States", True),
        ("Englishman", "English", False),  # whole words only
        ("KYOTO!", "Kyoto", True),
        ("an apple a day", "the apple", True),  # articles do not count
        ("Rome", "", False),
        ("São Paulo", "são paulo", True),
    ],
)
def test_contains_answer(answer: str, target: str, hit: bool) -> None:
    assert contains_answer(answer, target) is hit


def test_normalise_answer() -> None:
    assert normalise_answer("  The U.S.A.,  an  Answer! ") == "u s answer"


def probe(text: str, route: str, ms: float, ref: str | None = None) -> dict[str, Any]:
    return {
        "text": text,
        "route": route,
        "latency_ms": ms,
        "reference": ref or text,
        "reference_ms": 100.0,
        "prompt_tokens": 10,
        "question": "q",
    }


def test_summarise_counts_each_metric() -> None:
    rows = [
        {
            "target_new": "Rome",
            "prompt": probe(" Rome", "ike", 150),
            "paraphrase": probe(" Paris", "ike", 150),
            "locality": probe(" Paris", "passthrough", 105),
        },
        {
            "target_new": "Kyoto",
            "prompt": probe(" Kyoto", "ike", 250),
            "paraphrase": probe(" Kyoto", "ike", 250),
            "locality": probe(" Kyoto", "ike", 200, ref=" Tokyo"),
        },
    ]
    summary = summarise(rows)
    assert summary["metrics"] == {
        "efficacy": 1.0,
        "generality": 0.5,
        "locality": 0.5,
        "locality_leak": 0.5,
        "locality_unrelated": 0.5,
    }
    assert summary["counts"]["routed_in_scope"] == 5
    assert summary["latency_ms"]["in_scope_ratio_p50"] == 2.0
    assert summary["latency_ms"]["out_of_scope_ratio_p50"] == 1.05


def test_locality_prompts_naming_another_stored_subject_are_flagged() -> None:
    from kme_rag.evaluation import Case, locality_conflicts
    from kme_rag.memory.edit import parse_edit

    def case(i: str, subject: str, locality: str) -> Case:
        edit = parse_edit({"subject": subject, "relation": "{} is made by", "target_new": "X"})
        return Case(i, edit, "cloze", f"{subject} is made by", f"{subject} comes from", locality)

    cases = [
        case("1", "Windows 98", "Windows 98, a product of"),
        case("2", "iPod", "Windows 98 is by"),
    ]
    assert locality_conflicts(cases) == {"2"}  # its own subject does not count


def test_typographic_apostrophes_do_not_hide_the_answer() -> None:
    assert contains_answer("Ukraine\u2019s rail network", "Ukraine")
    assert contains_answer("\u201cRome\u201d, of course", "Rome")
