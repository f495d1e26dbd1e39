"""``kme bench freetext``'s figures and their REPORT.md table, from rows written here."""

from __future__ import annotations

from kme_rag.bench.freetext import summarise_freetext
from kme_rag.report.results import Result
from kme_rag.report.tables import freetext_table

ROWS = [
    {"kind": "question", "right": True, "fact_extracted": True, "route": "ike"},
    {"kind": "question", "right": False, "fact_extracted": True, "route": "passthrough"},
    {"kind": "question", "right": True, "fact_extracted": False, "route": "ike"},
    {"kind": "same_subject", "kept": False, "route": "ike"},
    {"kind": "neighbour", "kept": True, "route": "passthrough"},
    {"kind": "unrelated", "kept": True, "route": "passthrough"},
]


def test_the_figures_count_answers_and_kept_questions_apart() -> None:
    summary = summarise_freetext(ROWS)
    figures = summary["figures"]
    assert (figures["answered_with_new_fact"]["k"], figures["answered_with_new_fact"]["n"]) == (
        2,
        3,
    )
    assert figures["answered_when_fact_extracted"]["k"] == 1
    assert figures["answered_when_not_extracted"]["k"] == 1
    assert (figures["must_not_change_kept"]["k"], figures["must_not_change_kept"]["n"]) == (2, 3)
    assert figures["kept_same_subject"]["k"] == 0
    assert summary["routes"]["keep"] == {"ike": 1, "passthrough": 2}


def test_the_report_puts_the_default_reader_first_and_names_the_ablations() -> None:
    base = {
        "kind": "freetext",
        **summarise_freetext(ROWS),
        "add_text_ms": {"p50": 40.0, "p95": 90.0},
    }
    ablation = {**base, "extractor": "classifier", "statement_gate": False}
    default = {**base, "extractor": "classifier", "statement_gate": True}
    lines = freetext_table(
        [Result("freetext", ablation, "a.json"), Result("freetext", default, "b.json")]
    )
    header = lines[0]
    assert header.index("statements gated (`b.json`)") < header.index(
        "no gate (ablation) (`a.json`)"
    )
    assert any("40 / 90" in line for line in lines)
