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
    }
    assert summary["counts"]["routed_in_scope"] == 5
    assert summary["latency_ms"]["in_scope_ratio_p50"] == 2.0
    assert summary["latency_ms"]["out_of_scope_ratio_p50"] == 1.05
