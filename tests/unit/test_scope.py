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


def test_last_sentence_and_merged_hits() -> None:
    from kme_rag.memory.mention import last_sentence
    from kme_rag.memory.store import merge_hits

    assert last_sentence("It rained. Paris is the capital of") == "Paris is the capital of"
    assert last_sentence("One sentence only") == "One sentence only"
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
    x = pair_features(q, r, mentions, np.array([0.7, 0.2], dtype=np.float32))
    assert x.shape == (2, N_SCALARS + 8)
    assert x[:, 0].tolist() == [1.0, 0.0]  # relation cosine
    assert x[:, 1].tolist() == pytest.approx([0.7, 0.2])  # retrieval score
    assert x[:, 2].tolist() == [1.0, 0.0] and x[:, 3].tolist() == [0.0, 1.0]  # where named
    assert x[:, 4].tolist() == [1.0, 0.5]


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
