from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kme_rag.ike import Demo, completion_prompt, question_block
from kme_rag.memory.edit import parse_edit
from kme_rag.memory.store import SearchHit
from kme_rag.scope.base import mentions_subject
from kme_rag.scope.similarity import SimilarityScope, balanced_threshold

TOWER = parse_edit(
    {
        "subject": "Eiffel Tower",
        "relation": "{} is in",
        "target_new": "Rome",
        "subject_aliases": ["Tour Eiffel"],
    }
)


def test_subject_mention_is_whole_words_through_aliases() -> None:
    assert mentions_subject("Where is the eiffel tower?", TOWER)
    assert mentions_subject("Is the Tour-Eiffel tall?", TOWER)
    assert not mentions_subject("Where is the Eiffel Towers Inn?", TOWER)
    assert not mentions_subject("anything", parse_edit({"statement": "Free text."}))


def test_similarity_scope_needs_mention_and_score() -> None:
    scope = SimilarityScope(threshold=0.5, text_threshold=0.7)
    text = parse_edit({"statement": "The Louvre moved to Lyon."})
    hits = [SearchHit(TOWER, 0.8), SearchHit(text, 0.6)]
    assert scope.decide("Where is the Eiffel Tower?", hits).in_scope == (TOWER,)
    assert not scope.decide("Where is Big Ben?", hits).any  # high score, no mention
    assert not scope.decide("Where is the Eiffel Tower?", [SearchHit(TOWER, 0.4)]).any
    assert scope.decide("Where is the Louvre?", [SearchHit(text, 0.75)]).in_scope == (text,)


def test_balanced_threshold_separates_when_it_can() -> None:
    cut, acc = balanced_threshold(np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.65]))
    assert cut == 0.7 and acc == 1.0


def test_ike_prompts_read_as_the_paper_lays_them_out() -> None:
    demos = [
        Demo("copy", "A is in B.", "A is in", "B"),
        Demo("retain", "A is in B.", "C is in", "D"),
    ]
    assert completion_prompt(demos, [TOWER], "The Eiffel Tower is in") == (
        "New Fact: A is in B.\nPrompt: A is in B\n\n"
        "New Fact: A is in B.\nPrompt: C is in D\n\n"
        "New Fact: Eiffel Tower is in Rome.\nPrompt: The Eiffel Tower is in"
    )
    assert question_block([TOWER], "Where is\nit?") == (
        "New Fact: Eiffel Tower is in Rome.\nQ: Where is it?\nA:"
    )


def test_asking_sentence_and_merged_hits() -> None:
    from kme_rag.memory.mention import asking_sentence
    from kme_rag.memory.store import merge_hits

    assert asking_sentence("It rained. Paris is the capital of") == "Paris is the capital of"
    assert asking_sentence("One sentence only") == "One sentence only"
    text = parse_edit({"statement": "Free text."})
    merged = merge_hits([[SearchHit(TOWER, 0.4)], [SearchHit(TOWER, 0.7), SearchHit(text, 0.5)]], 5)
    assert [(h.edit.id, h.score) for h in merged] == [(TOWER.id, 0.7), (text.id, 0.5)]


def test_pair_features_line_up_with_the_mentions() -> None:
    from kme_rag.memory.mention import find_mention
    from kme_rag.scope.features import N_SCALARS, PairMention, pair_features

    q = np.eye(4, dtype=np.float32)[:2]  # (2, 4) unit rows
    r = np.eye(4, dtype=np.float32)[[0, 2]]
    mentions = [
        PairMention(find_mention("X", ["X"]), False),
        PairMention(find_mention("Y said X", ["X"]), True, 0.5),
    ]
    x = pair_features(q, r, mentions, np.array([0.7, 0.2], dtype=np.float32), [False, True])
    assert x.shape == (2, N_SCALARS + 8)
    assert x[:, 0].tolist() == [1.0, 0.0]  # relation cosine
    assert x[:, 1].tolist() == pytest.approx([0.7, 0.2])  # retrieval score
    assert x[:, 2].tolist() == [1.0, 0.0] and x[:, 3].tolist() == [0.0, 1.0]  # where named
    assert x[:, 4].tolist() == [1.0, 0.5]
    assert x[:, 6].tolist() == [0.0, 0.0]  # neither asks a date or a number


def test_a_date_question_about_an_entity_fact_is_flagged() -> None:
    from kme_rag.memory.mention import find_mention
    from kme_rag.scope.features import PairMention, numeric_object

    def asks(text: str) -> bool:
        return PairMention(find_mention(text, ["Microsoft"]), False).asks_quantity

    assert asks("In which year was Microsoft founded?") and asks("when was microsoft founded")
    assert asks("how many people work at Microsoft") and not asks("Who founded Microsoft?")
    founder = parse_edit({"subject": "Microsoft", "relation": "founder", "target_new": "Jobs"})
    year = parse_edit({"subject": "Microsoft", "relation": "founded", "target_new": "1976"})
    assert not numeric_object(founder) and numeric_object(year)
    assert numeric_object(parse_edit({"subject": "A", "relation": "b", "target_new": "42"}))


def test_scope_weights_round_trip(tmp_path: Path) -> None:
    from kme_rag.scope.classifier import ScopeWeights

    rng = np.random.default_rng(0)
    weights = ScopeWeights(
        rng.normal(size=(6, 3)).astype(np.float32),
        np.zeros(3, dtype=np.float32),
        np.ones(3, dtype=np.float32),
        -0.5,
        threshold=0.4,
        card={"seed": 0},
    )
    weights.save(tmp_path / "w.npz")
    loaded = ScopeWeights.load(tmp_path / "w.npz")
    x = rng.normal(size=(5, 6)).astype(np.float32)
    assert np.allclose(loaded.probability(x), weights.probability(x))
    assert loaded.threshold == 0.4 and loaded.card["seed"] == 0


def test_missing_weights_say_how_to_make_them(tmp_path: Path) -> None:
    from kme_rag.errors import ConfigurationError
    from kme_rag.scope.classifier import ScopeWeights

    with pytest.raises(ConfigurationError, match="kme scope train"):
        ScopeWeights.load(tmp_path / "none.npz")


def test_pararel_patterns_become_questions_of_every_form() -> None:
    import random

    from kme_rag.scope.pararel import FORMS, ParaRelRelation, phrase

    capital = ParaRelRelation(
        "P36",
        "capital",
        ("The capital of [X] is [Y] .", "[Y] is the capital city of [X].", "[X]'s capital, [Y]."),
    )
    rng = random.Random(0)
    seen = {form: {phrase(capital, "New Zealand", form, rng) for _ in range(20)} for form in FORMS}
    assert seen["cloze"] == {"The capital of New Zealand is", "New Zealand's capital,"}
    assert "What is the capital of New Zealand?" in seen["question"]
    assert "What is the capital city of New Zealand?" in seen["question"]
    assert "The capital of New Zealand is what?" in seen["echo"]
    assert all(t == t.lower() and not t.endswith("?") for t in seen["casual"] if t)
    assert any(t.startswith("whats ") for t in seen["casual"] if t)
    typos = {t for t in seen["typo"] if t}
    assert typos and all("New Zealand" in t for t in typos)  # the name is never misspelt
    assert all(len(t.split(". ")) >= 2 for t in seen["embedded"] if t)


def test_pararel_pairs_ask_the_same_subject_other_relations_and_skip_held_out_subjects(
    tmp_path: Path,
) -> None:
    import json
    import random

    from kme_rag.scope.pararel import pararel_pairs

    patterns = {
        "P36": ["The capital of [X] is [Y] .", "[X]'s capital is [Y]."],
        "P37": ["The official language of [X] is [Y] ."],
        "P17": ["[X] is located in [Y] ."],
        "P131": ["[X] is located in [Y] ."],  # shares a phrasing with P17: linked
    }
    for rid, rows in patterns.items():
        folder = tmp_path / "pararel"
        (folder / "patterns").mkdir(parents=True, exist_ok=True)
        (folder / "trex").mkdir(parents=True, exist_ok=True)
        (folder / "patterns" / f"{rid}.jsonl").write_text(
            "".join(json.dumps({"pattern": p, "lemma": rid.lower()}) + "\n" for p in rows)
        )
        subjects = ["France", "Kenya", "Peru"]
        (folder / "trex" / f"{rid}.jsonl").write_text(
            "".join(
                json.dumps({"sub_label": s, "obj_label": f"{s}-{rid}"}) + "\n" for s in subjects
            )
        )
    pairs, counts = pararel_pairs(tmp_path, random.Random(0), exclude={"kenya"}, asked=1)
    assert counts["pararel_dropped_eval_subject"] == 4
    assert not any("Kenya" in p.query or "kenya" in p.query for p in pairs)
    for pair in pairs:
        assert pair.edit.subject and pair.edit.subject.lower() in pair.query.lower()
        assert pair.edit.relation_id in patterns
    negatives = [p for p in pairs if not p.label]
    kinds = {p.kind for p in negatives}
    assert all(k.startswith("pararel-other-") or k == "pararel-quantity" for k in kinds)
    assert "pararel-quantity" in kinds  # "In which year was Peru located?"
    for pair in negatives:  # never a linked relation's phrasing
        if pair.edit.relation_id in ("P17", "P131") and pair.kind != "pararel-quantity":
            assert "located" not in pair.query.lower()


def test_a_relations_own_words_asking_a_date_make_a_negative() -> None:
    import random

    from kme_rag.scope.pararel import quantity_question

    rng = random.Random(0)
    for template, asked in [
        ("Which city was {} born in?", " was {} born?"),
        ("{} is developed by", " was {} developed?"),
        ("{}, that was founded in", " was {} founded?"),
    ]:
        question = quantity_question(template, rng)
        assert question is not None and question.endswith(asked), (template, question)
        assert question.split(" was ")[0] in ("When", "In which year", "In what year")
    assert quantity_question("Who founded {}?", rng) is None


def test_place_patterns_are_asked_with_where() -> None:
    from kme_rag.scope.pararel import _where

    assert _where("[X] is located in [Y] .") == ["Where is {} located?", "Where is {}?"]
    assert _where("[X] was born in [Y].") == ["Where was {} born?"]
    assert _where("[X] was written in [Y].") == []  # a language
    assert _where("The capital of [X] is [Y] .") == []


def test_question_bank_labels_questions_by_relation_and_keeps_linked_ones_apart() -> None:
    import random

    from kme_rag.scope.wikidata import QuestionBank, wh_word

    clozes = {
        "P50": "The author of [X] is __",
        "P1037": "The director of [X] is __",
        "P170": "[X] was created by __",
        "P36": "The capital of [X] is __",
        "P488": "The chairperson of [X] is __",
        "P169": "The chief executive officer of [X] is __",
    }
    records = [
        {"edit": "The author of Dune is Tolkien", "questions": ["Who penned Dune?"] * 2},
        {
            "edit": "The author of Emma is Poe",
            "questions": ["Who wrote Emma?", "Who is the author of Emma?"],
        },
        {"edit": "The author of Ulysses is Poe", "questions": ["Who is the author of Ulysses?"]},
        {"edit": "The director of Acme is Ann", "questions": ["Who is the director of Acme?"]},
        {"edit": "The director of Initech is Bo", "questions": ["Who is the director of Initech?"]},
        {"edit": "Dracula was created by Poe", "questions": ["Who created Dracula?"]},
        {"edit": "Sherlock was created by Poe", "questions": ["Who created Sherlock?"]},
        {"edit": "The capital of Peru is Cusco", "questions": ["What is the capital of Peru?"]},
        {"edit": "The capital of Chad is Sarh", "questions": ["What is the capital of Chad?"]},
        {"edit": "The chairperson of Acme is Cy", "questions": ["Who is the head of Acme?"]},
        {
            "edit": "The chairperson of Umbrella is Di",
            "questions": ["Who is the head of Umbrella?"],
        },
        {
            "edit": "The chief executive officer of Acme is Ed",
            "questions": ["Who is the head of Acme?"],
        },
        {
            "edit": "The chief executive officer of Soylent is Fa",
            "questions": ["Who is the head of Soylent?"],
        },
        {"edit": "The capital of Mali is Gao", "questions": ["What is the capital of Mali?"]},
    ]
    held_out = {"the capital of mali is gao"}
    bank = QuestionBank.build(records, clozes, held_out)
    # a phrasing one record asks (twice or not) is left out: "Who penned {}?"
    assert bank.by_id["P50"] == ["Who is the author of {}?"]  # Emma's and Ulysses' records
    assert bank.by_id["P36"] == ["What is the capital of {}?"]  # Mali's record is held out
    assert bank.relation("The director of Hamlet is Kurosawa") == "P1037"
    assert bank.relation("Nothing like a template") is None
    # author and creator are linked by meaning, chairperson and CEO by a shared phrasing
    assert "P170" in bank.linked("P50") and "P169" in bank.linked("P488")
    assert set(bank.others("P50")) == {
        "Who is the director of {}?",
        "What is the capital of {}?",
        "Who is the head of {}?",
    }
    assert "Who is the head of {}?" not in bank.others("P1037")  # leaders are linked
    assert "Who is the director of {}?" not in bank.others("P36", also_linked=["P1037"])
    rng = random.Random(0)
    for _ in range(20):
        first, second = bank.negatives("P50", "Hamlet", ["Who is the author of {}?"], rng)
        assert "hamlet" in first.lower() and "hamlet" in second.lower()
        assert "capital" not in first  # the first asks with the edit's own wh-word
        assert "author" not in first + second and "created" not in first + second
    assert wh_word("In which city was {} born?") == "which" and wh_word("{} is") == ""
