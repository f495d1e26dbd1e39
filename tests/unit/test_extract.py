"""Free text → facts: the pattern extractor on sentences written for these tests (not
from the held-out free-text set), and the shipped relation catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from kme_rag.memory.catalogue import SHIPPED, _dump, build_catalogue, load_catalogue
from kme_rag.memory.extract import ModelExtractor, PatternExtractor, split_sentences


@pytest.fixture(scope="module")
def extractor() -> PatternExtractor:
    return PatternExtractor()


def triples(extractor: PatternExtractor, text: str) -> list[tuple[str, str, str]]:
    return [(f.subject, f.relation.rid, f.target) for f in extractor.extract(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Louvre moved to Lyon in 2026.", ("The Louvre", "P131", "Lyon")),
        (
            "Breaking: Acme Corp has moved its headquarters to Austin, Texas after a vote.",
            ("Acme Corp", "P159", "Austin"),
        ),
        ("fyi the eiffel tower is now in rome", ("the eiffel tower", "P131", "rome")),
        ("Kenya's new capital is Mombasa.", ("Kenya", "P36", "Mombasa")),
        ("Burma was renamed Myanmar in 1989.", ("Burma", "P1448", "Myanmar")),
        ("Lionel Messi now plays for Inter Miami.", ("Lionel Messi", "P54", "Inter Miami")),
        ("Our startup Brightloop is now led by Dana Kim.", ("Brightloop", "P169", "Dana Kim")),
        ("Toyota was acquired by Ford for $50 billion.", ("Toyota", "P127", "Ford")),
        (
            "Germany switched its official language to French last year.",
            ("Germany", "P37", "French"),
        ),
        ("The Statue of Liberty is located in France.", ("The Statue of Liberty", "P17", "France")),
    ],
)
def test_one_sentence_gives_its_fact(
    extractor: PatternExtractor, text: str, expected: tuple[str, str, str]
) -> None:
    assert triples(extractor, text) == [expected]


def test_a_passage_resolves_the_company_and_continues_a_subject(
    extractor: PatternExtractor,
) -> None:
    text = (
        "Dana Kim is the new CEO of Brightloop. The company moved to Denver and is now "
        "led by Sam Lee. The office party was fun."
    )
    got = set(triples(extractor, text))
    assert got == {("Brightloop", "P169", "Sam Lee"), ("Brightloop", "P131", "Denver")}


def test_text_with_no_fact_gives_none(extractor: PatternExtractor) -> None:
    assert extractor.extract("What a week it has been!") == []
    assert extractor.extract("The weather was lovely in Lyon.") == []


def test_sentences_do_not_split_after_titles_or_initials() -> None:
    text = "Dr. Ada Park joined the U.S. Navy. It was sunny; we left."
    assert split_sentences(text) == [
        "Dr. Ada Park joined the U.S. Navy.",
        "It was sunny",
        "we left.",
    ]


def test_the_fact_becomes_a_structured_edit_linked_to_its_text(
    extractor: PatternExtractor,
) -> None:
    text = "Kenya's new capital is Mombasa."
    edit = extractor.extract(text)[0].to_edit(text, source="test")
    assert (edit.subject, edit.relation, edit.target_new) == ("Kenya", "capital", "Mombasa")
    assert edit.prompt == "The capital of {} is" and edit.relation_id == "P36"
    assert edit.derived_from == text and edit.source == "test"
    assert edit.statement == "The capital of Kenya is Mombasa."


def test_the_model_extractor_parses_its_line_and_maps_the_relation() -> None:
    prompts: list[str] = []

    def complete(prompt: str) -> str:
        prompts.append(prompt)
        return " Louvre | city | Lyon\nSentence: more"

    found = ModelExtractor(complete, {"city": "P131"}.get).extract("The Louvre moved to Lyon.")
    assert [(f.subject, f.relation.rid, f.target) for f in found] == [("Louvre", "P131", "Lyon")]
    assert prompts[0].endswith("Sentence: The Louvre moved to Lyon.\nFact:")
    assert ModelExtractor(lambda _: "no idea", {}.get).extract("x y z.") == []


def test_the_shipped_catalogue_is_what_the_data_builds(data_dir: Path) -> None:
    assert SHIPPED.read_text(encoding="utf-8") == _dump(build_catalogue(data_dir))
    catalogue = load_catalogue()
    assert {"P36", "P131", "P169", "P1448", "P54"} <= set(catalogue)
    assert all("{}" in r.cloze and "{}" in r.question for r in catalogue.values())


def test_the_held_out_free_text_set_matches_its_recorded_sha256() -> None:
    import hashlib
    import re

    folder = Path(__file__).parents[2] / "benchmarks" / "heldout"
    readme = (folder / "README.md").read_text(encoding="utf-8")
    recorded = re.search(r"sha256 \(freetext-v1\.jsonl\): ([0-9a-f]{64})", readme)
    assert recorded is not None
    data = (folder / "freetext-v1.jsonl").read_bytes()
    assert hashlib.sha256(data).hexdigest() == recorded.group(1)
