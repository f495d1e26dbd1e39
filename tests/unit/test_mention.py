from __future__ import annotations

from kme_rag.memory.edit import parse_edit
from kme_rag.memory.graph import FactGraph
from kme_rag.memory.mention import asking_sentence, find_mention, name_tokens
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


def test_asking_sentence_splits_lines_too() -> None:
    assert (
        asking_sentence("References\n\nCategory:Rivers Vevo is from")
        == "Category:Rivers Vevo is from"
    )


def test_pair_mention_reads_names_with_initials_and_earlier_sentences() -> None:
    edit = parse_edit(
        {"subject": "Robert A. Millikan", "relation": "{} works in", "target_new": "x"}
    )
    m = pair_mention("Robert A. Millikan's domain of activity is", edit)
    assert m.exact and not m.elsewhere and m.masked == "X's domain of activity is"
    # the question is the sentence that asks, though "A." splits it
    m = pair_mention("Which field did Robert A. Millikan study? He studied", edit)
    assert m.exact and not m.elsewhere
    m = pair_mention("I admire Robert A. Millikan. Which field did he study?", edit)
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


def test_the_asking_sentence_is_the_question_inside_a_message() -> None:
    message = "I'm flying to Kenya next year. What is the capital of Kenya? My flight lands there."
    assert asking_sentence(message) == "What is the capital of Kenya?"
    assert asking_sentence("It rained. Paris is the capital of") == "Paris is the capital of"


def test_a_possessive_typed_without_its_apostrophe_names_the_subject() -> None:
    for text, name in [
        ("what is angela merkels husband called", "Angela Merkel"),
        ("xi jinpings party", "Xi Jinping"),
        ("whats frances capital", "France"),
    ]:
        assert find_mention(text, [name]).exact, text
    # a capitalised word keeps its "s" (a name), a last word or one before a function
    # word is a plural, and only the name's last word may carry the dropped apostrophe
    for text, name in [
        ("Who is Frances married to?", "France"),
        ("how many apples", "Apple"),
        ("apples are red", "Apple"),
        ("angelas merkel fan club", "Angela Merkel"),
        ("the glass ceiling", "Glas"),
    ]:
        assert not find_mention(text, [name]).exact, text


def test_the_graph_finds_a_subject_named_with_a_dropped_apostrophe() -> None:
    edit = parse_edit({"subject": "Angela Merkel", "relation": "spouse", "target_new": "Joe"})
    graph = FactGraph([edit])
    assert [e.id for e in graph.mentioned("who is angela merkels husband")] == [edit.id]
    assert graph.mentioned("the angela merkel years") == [edit]
    assert graph.mentioned("how many angela merkels") == []


def test_the_mention_read_is_the_one_in_the_question() -> None:
    edit = parse_edit({"subject": "Jimi Hendrix", "relation": "instrument", "target_new": "oboe"})
    text = "I found a record of Jimi Hendrix at a market. What did Jimi Hendrix play? I'm new."
    mention = pair_mention(text, edit)
    assert mention.masked == "What did X play?" and not mention.elsewhere
    assert text[mention.mention.start : mention.mention.end] == "Jimi Hendrix"
    assert mention.mention.start > text.index("market")
