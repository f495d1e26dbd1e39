from __future__ import annotations

from kme_rag.memory.edit import parse_edit
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.mention import find_mention, last_sentence, name_tokens
from kme_rag.scope.features import crop, pair_mention, relation_text


def test_words_keep_inner_apostrophes_but_not_possessives() -> None:
    assert name_tokens("who is you're so vain") == ["who", "is", "you're", "so", "vain"]
    assert name_tokens("Danielle Darrieux's mother") == ["danielle", "darrieux", "s", "mother"]
    assert not find_mention("who is you're so vain written for", ["Re!"]).exact


def test_exact_mention_masks_the_name() -> None:
    m = find_mention("What sport does Hank Aaron play? They play", ["Hank Aaron"])
    assert m.exact and not m.extended and m.masked == "What sport does X play? They play"
    assert find_mention("Is the Tour-Eiffel tall?", ["Eiffel Tower", "Tour Eiffel"]).exact


def test_a_longer_name_is_another_entity() -> None:
    for text, name in [
        ("Paris Hilton was born in", "Paris"),
        ("BBC Radio 1, from", "BBC Radio"),
        ("Jill Ireland is native to", "Ireland"),
        ("Louis I of Spain was originally from", "Spain"),
    ]:
        assert find_mention(text, [name]).extended, text
    for text in ("In Ireland, the language spoken is", "Ireland is in", "Is Ireland in Europe?"):
        assert not find_mention(text, ["Ireland"]).extended, text


def test_partial_names_are_not_mentions() -> None:
    m = find_mention("George Grey's life ended in", ["George Dance the Younger"])
    assert not m.exact and 0 < m.overlap < 1


def test_last_sentence_splits_lines_too() -> None:
    assert (
        last_sentence("References\n\nCategory:Rivers Vevo is from")
        == "Category:Rivers Vevo is from"
    )


def test_pair_mention_reads_names_with_initials_and_earlier_sentences() -> None:
    edit = parse_edit(
        {"subject": "Robert A. Millikan", "relation": "{} works in", "target_new": "x"}
    )
    m = pair_mention("Robert A. Millikan's domain of activity is", edit)
    assert m.exact and not m.elsewhere and m.masked == "X's domain of activity is"
    m = pair_mention("Which field did Robert A. Millikan study? He studied", edit)
    assert m.exact and m.elsewhere


def test_crop_keeps_the_words_around_the_mask() -> None:
    assert crop("Category:Rivers of the Kimberley region of Western Australia X is from") == (
        "the Kimberley region of Western Australia X is from"
    )
    assert crop("Xbox owners say X is from") == "Xbox owners say X is from"


def test_relation_text_masks_the_subject() -> None:
    cloze = parse_edit({"subject": "A", "relation": "{} is a citizen of", "target_new": "B"})
    plain = parse_edit({"subject": "A", "relation": "capital", "target_new": "B"})
    assert relation_text(cloze) == "X is a citizen of"
    assert relation_text(plain) == "The capital of X is"
    assert relation_text(parse_edit({"statement": "Free text."})) is None


def test_graph_finds_the_subjects_a_text_names() -> None:
    tower = parse_edit({"subject": "Eiffel Tower", "relation": "{} is in", "target_new": "Rome"})
    aaron = parse_edit({"subject": "Hank Aaron", "relation": "sport", "target_new": "golf"})
    graph = FactGraph([tower, aaron])
    assert graph.mentioned("Where is the eiffel tower?") == [tower]
    both = graph.mentioned("Did Hank Aaron visit the Eiffel Tower?")
    assert {e.id for e in both} == {tower.id, aaron.id}
    assert graph.mentioned("Where is the Eiffel?") == []
