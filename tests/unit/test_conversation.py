"""Follow-up turns written out whole (:func:`kme_rag.conversation.resolve_followup`)."""

from __future__ import annotations

import pytest

from kme_rag.backends import Message
from kme_rag.conversation import resolve_followup
from kme_rag.memory.edit import Edit, parse_edit

EDITS = [
    parse_edit({"subject": "Sydney Opera House", "relation": "city", "target_new": "Perth"}),
    parse_edit({"subject": "Kenya", "relation": "capital", "target_new": "Mombasa"}),
    parse_edit({"subject": "Angela Merkel", "relation": "spouse", "target_new": "Joe"}),
    parse_edit({"subject": "New Zealand", "relation": "official language", "target_new": "Hindi"}),
]


def mentioned(text: str) -> list[Edit]:
    lowered = text.lower()
    return [e for e in EDITS if e.subject and e.subject.lower() in lowered]


def talk(*turns: str) -> list[Message]:
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("turns", "resolved"),
    [
        (
            (
                "Tell me about the Sydney Opera House.",
                "It is a famous venue.",
                "Which city is it in?",
            ),
            "Which city is Sydney Opera House in?",
        ),
        (
            ("What do you know about Kenya?", "A lot.", "What is its capital?"),
            "What is Kenya's capital?",
        ),
        (
            ("Who is Angela Merkel?", "A German politician.", "Who is her husband?"),
            "Who is Angela Merkel's husband?",
        ),
        (
            ("Who is Angela Merkel?", "A German politician.", "who did she marry"),
            "who did Angela Merkel marry",
        ),
        (
            ("I'm flying to New Zealand.", "Nice!", "What language do they speak there?"),
            "What language do they speak in New Zealand?",
        ),
        (
            ("What is the capital of France?", "Paris.", "And Kenya?"),
            "What is the capital of Kenya?",
        ),
        (
            ("What is the capital of France?", "Paris.", "what about kenya"),
            "What is the capital of kenya?",
        ),
    ],
)
def test_a_follow_up_is_written_out_with_the_edited_subject(
    turns: tuple[str, ...], resolved: str
) -> None:
    assert resolve_followup(talk(*turns), mentioned) == resolved


@pytest.mark.parametrize(
    "turns",
    [
        ("Which city is it in?",),  # nothing earlier to resolve to
        ("Tell me about Paris.", "It is in France.", "How old is it?"),  # no edited subject
        ("Tell me about Kenya.", "Sure.", "What is the capital of Kenya?"),  # names it itself
        ("Tell me about Kenya.", "Sure.", "What is the tallest mountain on Earth?"),  # no pronoun
        ("What is the capital of France?", "Paris.", "And Germany?"),  # Germany is not edited
    ],
)
def test_turns_that_need_no_resolving_are_left_alone(turns: tuple[str, ...]) -> None:
    assert resolve_followup(talk(*turns), mentioned) is None


def test_the_users_own_subject_wins_over_one_the_model_named() -> None:
    turns = talk(
        "Tell me about the Sydney Opera House.",
        "It is a venue; the capital of Kenya has nothing like it.",
        "Which city is it in?",
    )
    assert resolve_followup(turns, mentioned) == "Which city is Sydney Opera House in?"
    newest = talk(
        "Tell me about Kenya.", "OK.", "And the Sydney Opera House?", "OK.", "Where is it?"
    )
    assert resolve_followup(newest, mentioned) == "Where is Sydney Opera House?"
