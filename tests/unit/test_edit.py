from __future__ import annotations

import pytest

from kme_rag.errors import ValidationError
from kme_rag.memory.edit import Edit, normalise_name, parse_edit


def test_structured_edit_generates_statement_from_template() -> None:
    edit = parse_edit(
        {
            "subject": "Danielle Darrieux",
            "relation": "The mother tongue of {} is",
            "target_new": "English",
        }
    )
    assert edit.statement == "The mother tongue of Danielle Darrieux is English."
    assert edit.structured and edit.status == "active"


def test_structured_edit_generates_statement_from_relation_name() -> None:
    edit = parse_edit({"subject": "Japan", "relation": "capital", "target_new": "Kyoto"})
    assert edit.statement == "The capital of Japan is Kyoto."


def test_given_statement_is_kept() -> None:
    edit = parse_edit(
        {
            "subject": "Japan",
            "relation": "capital",
            "target_new": "Kyoto",
            "statement": "Kyoto is Japan's capital.",
        }
    )
    assert edit.statement == "Kyoto is Japan's capital."


def test_unstructured_edit_is_text_only() -> None:
    edit = parse_edit({"statement": "The Louvre moved to Lyon."})
    assert not edit.structured and edit.key is None


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"subject": "", "relation": "r", "target_new": "o"}, "''"),
        ({"subject": "   ", "relation": "r", "target_new": "o"}, "'   '"),
        ({"subject": "a\x00b", "relation": "r", "target_new": "o"}, "'a\\x00b'"),
        ({"subject": "s", "relation": "r", "target_new": "o\nQ: say X"}, "'\\n'"),
        ({"subject": "x" * 1001, "relation": "r", "target_new": "o"}, "1001 characters"),
        ({"subject": "s", "relation": "r", "target_new": "o", "prompt": "no slot"}, "'no slot'"),
        (
            {"subject": "s", "relation": "r", "target_new": "o", "prompt": "{} and {}"},
            "'{} and {}'",
        ),
        ({"subject": "s", "relation": "r"}, "target_new=None"),
        ({"statement": "\t"}, "'\\t'"),
        ({}, "a triple"),
    ],
)
def test_bad_input_is_rejected_with_the_value_shown(fields: dict[str, str], shown: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_edit(fields)
    assert shown in str(info.value)


def test_field_at_the_limit_is_accepted() -> None:
    assert parse_edit({"statement": "y" * 1000}).statement == "y" * 1000


def test_metadata_round_trip_is_lossless() -> None:
    edit = parse_edit(
        {
            "subject": "Eiffel Tower",
            "relation": "{} is in",
            "target_new": "Rome",
            "target_true": "Paris",
            "subject_aliases": ["Tour Eiffel"],
            "target_aliases": ["Roma"],
        }
    )
    meta = edit.to_metadata()
    assert all(v is None or isinstance(v, (str, int, float, bool)) for v in meta.values())
    assert meta["supersedes"] is None  # an update with it removes a stale key
    assert Edit.from_metadata(edit.id, meta) == edit


def test_key_uses_normalised_names() -> None:
    a = parse_edit({"subject": "The Eiffel Tower", "relation": "City", "target_new": "Rome"})
    b = parse_edit({"subject": "eiffel  tower.", "relation": "city", "target_new": "Berlin"})
    assert a.key == b.key == ("eiffel tower", "city")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("The  Eiffel Tower.", "eiffel tower"),
        ("\uff34\uff2f\uff2b\uff39\uff2f", "tokyo"),
        ("an apple", "apple"),
        ("U.S.A.", "u.s.a"),
    ],
)
def test_normalise_name(raw: str, key: str) -> None:
    assert normalise_name(raw) == key


@pytest.mark.parametrize("aliases", [True, [1], "Tour Eiffel", {"a": 1}])
def test_aliases_that_are_not_string_lists_are_a_validation_error(aliases: object) -> None:
    with pytest.raises(ValidationError, match="subject_aliases"):
        parse_edit(
            {
                "subject": "Eiffel Tower",
                "relation": "city",
                "target_new": "Rome",
                "subject_aliases": aliases,
            }
        )
