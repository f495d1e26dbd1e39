from __future__ import annotations

from typing import Any

import pytest

from kme_rag.bench.harness import PROBES, contains_answer, normalise_answer, summarise


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


def test_the_extended_probes_score_casual_same_subject_and_stale_answers() -> None:
    rows = [
        {
            "target_new": "Rome",
            "target_true": "Paris",
            "prompt": probe(" Rome", "ike", 150),
            "paraphrase": probe(" Paris, not Rome", "ike", 150),
            "locality": probe(" Berlin", "passthrough", 105),
            "casual": probe(" Rome", "ike", 150),
            "same_subject": [
                probe(" 300 metres", "passthrough", 100),  # kept
                probe(" Rome", "ike", 100, ref=" Gustave Eiffel"),  # changed, a leak
            ],
        },
        {
            "target_new": "Kyoto",
            "target_true": "Tokyo",
            "prompt": probe(" Kyoto", "ike", 250),
            "paraphrase": probe(" Kyoto", "ike", 250),
            "locality": probe(" Seoul", "passthrough", 105),
            "casual": probe(" Tokyo", "passthrough", 250),
            "same_subject": [probe(" Japanese", "ike", 100, ref=" Japanese yen")],
        },
    ]
    summary = summarise(rows)
    metrics = summary["metrics"]
    assert metrics["generality_casual"] == 0.5
    assert metrics["locality_same_subject"] == round(1 / 3, 4)
    assert metrics["locality_same_subject_leak"] == round(1 / 3, 4)
    assert metrics["stale"] == round(2 / 6, 4)  # "Paris, not Rome" and the casual "Tokyo"
    assert summary["latency_ms"]["in_scope_answer_chars_p50"] is not None
    plain = [{k: v for k, v in r.items() if k not in ("casual", "same_subject")} for r in rows]
    assert "locality_same_subject" not in summarise(plain)["metrics"]  # older rows


def test_same_subject_probes_ask_two_other_relations() -> None:
    from kme_rag.bench.harness import other_relations

    by_group = {0: ["The capital of {} is"], 1: ["{} is located in"], 2: ["{} was founded by"]}
    for index in range(6):
        picked = other_relations(by_group, 0, index)
        assert picked and "The capital of {} is" not in picked
        assert picked == other_relations(by_group, 0, index)  # the same every run


def test_locality_prompts_naming_another_stored_subject_are_flagged() -> None:
    from kme_rag.bench.harness import Case, locality_conflicts
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


class _Model:
    """A completion function that counts what it is asked: the unedited answer is the
    prompt's last word upper-cased."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.asked.append(prompt)
        return " " + prompt.split()[-1].upper()


class _Editor:
    """An editor that answers every prompt ``edited`` (route ``ike``), without a model."""

    def complete(self, text: str) -> Any:
        from kme_rag.editor import Answer

        return Answer(" edited", "ike", sent=text)


class _Memory:
    def add_many(self, edits: Any) -> None:
        self.added = list(edits)


def _cases(n: int) -> list[Any]:
    from kme_rag.bench.harness import Case
    from kme_rag.memory.edit import parse_edit

    edit = parse_edit({"subject": "Rome", "relation": "{} is in", "target_new": "Spain"})
    return [Case(str(i), edit, "cloze", f"p{i} a", f"q{i} b", f"l{i} c") for i in range(n)]


def test_stored_references_are_read_back_but_on_every_live_every_th_case() -> None:
    from kme_rag.backends import CallableBackend
    from kme_rag.bench.harness import StoredReferences, run_cases

    cases = _cases(8)
    texts = {t: " " + t.split()[-1].upper() for c in cases for t in (c.prompt, c.paraphrase)}
    texts[cases[4].locality] = " STALE"  # case 4 is asked live: the check must see this
    stored = StoredReferences(texts, "none.json", live_every=4)
    model = _Model()
    rows = list(
        run_cases(
            cases,
            CallableBackend(model),
            _Memory(),  # type: ignore[arg-type]
            _Editor(),  # type: ignore[arg-type]
            edits_mode="all",
            max_tokens=4,
            stored=stored,
        )
    )
    # cases 0 and 4 are asked live; the others' localities were never stored: asked too
    live = {c.prompt for c in cases[::4]} | {c.paraphrase for c in cases[::4]}
    assert set(model.asked) == live | {c.locality for c in cases}
    assert stored.counts == {"reused": 12, "asked": 12, "checked": 5, "mismatched": 1}
    assert rows[1]["prompt"]["reference"] == " A" and rows[1]["prompt"]["reference_ms"] is None
    assert rows[4]["locality"]["reference"] == " C"  # the live answer, not the stale one
    assert rows[4]["prompt"]["reference_ms"] is not None
    summary = summarise(rows)
    assert summary["latency_ms"]["in_scope_ratio_p50"] is not None  # from the live cases only
    assert stored.summary()["file"] == "none.json"


def test_stored_references_must_come_from_the_same_model_and_settings(tmp_path: Any) -> None:
    import json

    from kme_rag.bench.harness import StoredReferences
    from kme_rag.errors import ValidationError

    row = {p: {"question": f"{p}?", "reference": f" {p}"} for p in PROBES}
    (tmp_path / "none.cases.jsonl").write_text(json.dumps(row) + "\n")
    meta = {"method": "none", "dataset": "zsre", "model": "m.gguf", "max_tokens": 16}
    summary = tmp_path / "none.json"
    summary.write_text(json.dumps({**meta, "cases_file": "none.cases.jsonl"}))
    stored = StoredReferences.load(summary, dataset="zsre", model="m.gguf", max_tokens=16)
    assert stored.texts == {
        "prompt?": " prompt",
        "paraphrase?": " paraphrase",
        "locality?": " locality",
    }
    with pytest.raises(ValidationError, match="max_tokens"):
        StoredReferences.load(summary, dataset="zsre", model="m.gguf", max_tokens=8)
    with pytest.raises(ValidationError, match="cannot read"):
        StoredReferences.load(tmp_path / "missing.json", dataset="zsre", model="m", max_tokens=16)


def test_the_follow_up_probe_asks_the_paraphrase_with_a_pronoun() -> None:
    from kme_rag.bench.harness import Case, with_pronoun
    from kme_rag.memory.edit import parse_edit

    assert with_pronoun(
        "Danielle Darrieux's mother tongue is", "Danielle Darrieux", person=True
    ) == ("His mother tongue is")
    assert with_pronoun("Known fact. Apple A5 is created by", "Apple A5", person=False) == (
        "Known fact. It is created by"
    )
    assert with_pronoun("The capital of Japan is", "Japan", person=False) == "The capital of it is"
    assert with_pronoun("Where is the tower?", "Japan", person=False) is None
    edit = parse_edit(
        {"subject": "Danielle Darrieux", "relation": "mother tongue", "target_new": "English"}
    )
    case = Case(
        "0",
        edit,
        "cloze",
        "The mother tongue of Danielle Darrieux is",
        "Where Danielle Darrieux is from, people speak the language of",
        "Michel Rocard is a native speaker of",
    )
    turns = case.two_turn()
    assert turns is not None and [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == "Tell me about Danielle Darrieux."
    assert turns[2]["content"] == "Where he is from, people speak the language of"


def test_the_follow_up_figure_is_scored_against_the_same_cases_single_turn() -> None:
    rows = [
        {
            "target_new": "Rome",
            "target_true": "Paris",
            "prompt": probe(" Rome", "ike", 150),
            "paraphrase": probe(" Rome", "ike", 150),
            "locality": probe(" Berlin", "passthrough", 105),
            "two_turn": {**probe(" Rome", "ike", 150), "read_as": "Where is X?"},
        },
        {
            "target_new": "Kyoto",
            "target_true": "Tokyo",
            "prompt": probe(" Kyoto", "ike", 250),
            "paraphrase": probe(" Kyoto", "ike", 250),
            "locality": probe(" Seoul", "passthrough", 105),
            "two_turn": {**probe(" Tokyo", "passthrough", 250), "read_as": ""},
        },
    ]
    summary = summarise(rows)
    assert summary["metrics"]["generality_two_turn"] == 0.5
    assert summary["metrics"]["two_turn_of_single"] == 0.5
    assert summary["counts"]["two_turn_resolved"] == 1
