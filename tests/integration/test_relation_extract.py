"""The free-text reader built on the scope classifier (:mod:`kme_rag.scope.extract`), with
the real embedder and the shipped weights. Sentences written for these tests; none is
from the benchmarks' evaluation splits, the tuning sentences or the held-out sets."""

from __future__ import annotations

import pytest

from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.lexicon import SHIPPED, build_common_words
from kme_rag.scope.extract import RelationExtractor, relation_texts


@pytest.fixture(scope="module")
def reader(embedder: MiniLMEmbedder) -> RelationExtractor:
    return RelationExtractor(embedder)


def facts(reader: RelationExtractor, text: str) -> set[tuple[str, str, str]]:
    return {(f.subject, f.relation.rid, f.target) for f in reader.extract(text)}


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("Oslo Airport is now owned by Lufthansa.", ("Oslo Airport", "P127", "Lufthansa")),
        ("Martina Vogel works as a carpenter.", ("Martina Vogel", "P106", "carpenter")),
        ("Kai Brenner plays the cello.", ("Kai Brenner", "P1303", "cello")),
        ("The capital of Peru is Cusco.", ("Peru", "P36", "Cusco")),
        ("Ravi Menon was born in Lisbon.", ("Ravi Menon", "P19", "Lisbon")),
        (
            "Brightwater Labs moved its headquarters to Denver.",
            ("Brightwater Labs", "P159", "Denver"),
        ),
        ("Greta Lund has signed for Aston Villa.", ("Greta Lund", "P54", "Aston Villa")),
        (
            "The Orinoco Hotel was named after Simon Bolivar.",
            ("Orinoco Hotel", "P138", "Simon Bolivar"),
        ),
    ],
)
def test_a_sentence_becomes_its_fact(reader: RelationExtractor, text: str, fact: tuple) -> None:
    assert facts(reader, text) == {fact}


def test_an_object_before_its_subject_where_the_sentence_says_so(reader: RelationExtractor) -> None:
    assert facts(reader, "Lena Ortiz is the new head coach of Porto.") == {
        ("Porto", "P286", "Lena Ortiz")
    }
    assert facts(reader, "Walloon is Pieter Claes's mother tongue.") == {
        ("Pieter Claes", "P103", "Walloon")
    }


def test_a_passage_gives_each_fact_and_it_stands_for_the_subject(reader: RelationExtractor) -> None:
    text = (
        "Quillon Games is now owned by Nintendo. It moved its headquarters to Kyoto in May, "
        "and the company is led by Aiko Tanaka."
    )
    got = facts(reader, text)
    assert ("Quillon Games", "P127", "Nintendo") in got
    assert ("Quillon Games", "P159", "Kyoto") in got  # "in May" is not the object


@pytest.mark.parametrize(
    "text",
    [
        "Shares rose 4% on the news.",
        "The weather was lovely.",
        "Please send the slides by Friday.",
        "Everyone liked the new office.",
        "Our CEO is now Dana Kim.",  # whose CEO is not said
    ],
)
def test_a_sentence_stating_no_fact_gives_none(reader: RelationExtractor, text: str) -> None:
    assert facts(reader, text) == set()


def test_relations_are_stated_by_their_cloze_question_and_patterns() -> None:
    from kme_rag.memory.catalogue import load_catalogue

    texts = relation_texts(load_catalogue()["P103"])
    assert texts[:2] == ["The native language of X is", "What is the native language of X?"]
    assert "What is X's mother tongue?" in texts


def test_the_shipped_common_words_are_what_the_data_builds(data_dir) -> None:  # type: ignore[no-untyped-def]
    assert SHIPPED.read_text(encoding="utf-8").split() == build_common_words(data_dir)


def test_a_fact_keeps_the_sentence_s_own_phrasing_as_its_prompt(reader: RelationExtractor) -> None:
    from kme_rag.scope.features import relation_texts_of

    (fact,) = reader.extract("The Orinoco Hotel moved to Cusco in 2026.")
    edit = fact.to_edit("The Orinoco Hotel moved to Cusco in 2026.")
    assert (
        edit.prompt == "The {} moved to" and edit.statement == "The Orinoco Hotel moved to Cusco."
    )
    # the scope compares a question with both the sentence's phrasing and the relation's
    assert relation_texts_of(edit) == ["The X moved to", "X is located in"]
    (reversed_,) = reader.extract("Lena Ortiz is the new head coach of Porto.")
    assert reversed_.template is None  # the object does not end the sentence: the cloze
