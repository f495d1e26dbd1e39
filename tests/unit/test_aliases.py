"""Known aliases (countryinfo, filtered) and the linker's rules for codes."""

from __future__ import annotations

from kme_rag.memory.aliases import known_aliases, subject_names, target_names
from kme_rag.memory.edit import Edit
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.mention import find_mention, is_acronym

UK = Edit(subject="United Kingdom", relation="capital", target_new="Manchester")


def test_a_country_has_its_common_aliases_both_ways() -> None:
    assert {"UK", "U.K.", "Great Britain"} <= set(known_aliases("United Kingdom"))
    assert "United Kingdom" in known_aliases("UK")
    assert {"US", "USA", "United States of America"} <= set(known_aliases("United States"))
    assert "Holland" in known_aliases("Netherlands")
    assert known_aliases("Eiffel Tower") == ()


def test_imprecise_spellings_are_not_aliases() -> None:
    assert "GB" not in known_aliases("United Kingdom")  # an ISO code, not the initials
    assert "DE" not in known_aliases("Germany")
    assert "CR" not in known_aliases("Costa Rica")  # initials, but county roads in text
    assert "Island" not in known_aliases("Iceland")  # an English word
    assert "Republic of China" not in known_aliases("Taiwan")  # ends "People's Republic of China"
    assert "Togolese" not in known_aliases("Togo")  # the demonym


def test_user_aliases_come_first_and_stay() -> None:
    edit = Edit(
        subject="United Kingdom",
        relation="capital",
        target_new="United States",
        subject_aliases=("Blighty",),
    )
    names = subject_names(edit)
    assert names[:2] == ("United Kingdom", "Blighty") and "UK" in names
    assert "USA" in target_names(edit)
    assert subject_names(Edit(statement="The Louvre moved to Lyon.")) == ()


def test_codes_name_an_entity_only_where_typed_as_one() -> None:
    names = subject_names(UK)
    for text in (
        "What is the capital of the UK?",
        "whats the capital of the uk",
        "Capital of the U.K.?",
        "What is the capital of Great Britain?",
    ):
        assert find_mention(text, names).exact, text
    assert find_mention("capital of uk", names).exact  # "uk" is no English word
    assert not find_mention("as far as I know", names).any
    us = subject_names(Edit(subject="United States", relation="currency", target_new="Euro"))
    assert not find_mention("Can you tell us the capital of Peru?", us).any
    assert find_mention("Which currency does the US use?", us).exact
    assert not find_mention("what money do they use in us", us).any
    assert find_mention("what money do they use in the us", us).exact
    assert is_acronym("US") and is_acronym("IT")
    assert not any(is_acronym(n) for n in ("UK", "UN", "PAX", "U.S.", "Us"))


def test_a_dotted_code_is_masked_whole_and_runs_on_into_a_longer_name() -> None:
    names = subject_names(UK)
    assert find_mention("Capital of the U.K.?", names).masked == "Capital of the X?"
    us = subject_names(Edit(subject="United States", relation="currency", target_new="Euro"))
    assert find_mention("Where is U.S. Route 30 located?", us).extended


def test_the_longest_name_is_the_mention() -> None:
    cuba = subject_names(Edit(subject="Cuba", relation="capital", target_new="Santiago"))
    mention = find_mention("Where is Republic of Cuba?", cuba)
    assert mention.exact and not mention.extended and mention.masked == "Where is X?"
    mention = find_mention("Where is The Netherlands located?", ["Netherlands"])
    assert mention.exact and not mention.extended


def test_the_graph_finds_a_subject_by_its_known_aliases() -> None:
    graph = FactGraph([UK])
    assert [e.subject for e in graph.mentioned("whats the capital of the uk")] == ["United Kingdom"]
    assert [e.subject for e in graph.mentioned("What is Great Britain's capital?")] == [
        "United Kingdom"
    ]
    assert graph.mentioned("capital of the united states") == []
    assert graph.lookup("UK", "capital") == UK
    us = FactGraph([Edit(subject="United States", relation="currency", target_new="Euro")])
    assert us.mentioned("Can you tell us what it is?") == []
    assert len(us.mentioned("What does the U.S. use as money?")) == 1


def test_a_capitalised_word_before_a_code_is_a_longer_name_unless_it_starts_a_sentence() -> None:
    assert find_mention("What released A.U.S.A.?", ["U.S.A."]).extended
    assert not find_mention("Nice. In Ireland, they speak", ["Ireland"]).extended
    assert not find_mention("I'm going there. Which US state is Denver in?", ["US"]).extended
