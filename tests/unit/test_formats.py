from __future__ import annotations

import json
from pathlib import Path

import pytest

from kme_rag.errors import ValidationError
from kme_rag.memory.edit import parse_edit
from kme_rag.memory.formats import (
    counterfact_edit,
    detect_format,
    mquake_edits,
    read_edits,
    write_jsonl,
    zsre_edit,
)

COUNTERFACT = {
    "case_id": 0,
    "prompt": "The mother tongue of Danielle Darrieux is",
    "target_new": "English",
    "subject": "Danielle Darrieux",
    "ground_truth": "French",
    "rephrase_prompt": "Where Danielle Darrieux is from, people speak the language of",
    "locality_prompt": "Michel Rocard is a native speaker of",
    "locality_ground_truth": "French",
}
ZSRE = {
    "subject": "UniFirst",
    "src": "What is the product made by UniFirst?",
    "rephrase": "What will be the product of UniFirst?",
    "alt": "unmanned aircraft",
    "answers": ["uniform"],
    "loc": "nq question: who sings",
    "loc_ans": "x",
}
MQUAKE = {
    "case_id": 1,
    "requested_rewrite": [
        {
            "prompt": "{} is a citizen of",
            "relation_id": "P27",
            "target_new": {"str": "Croatia", "id": "Q224"},
            "target_true": {"str": "United States of America", "id": "Q30"},
            "subject": "Ellie Kemper",
            "fact_new": "Ellie Kemper is a citizen of Croatia.",
        }
    ],
    "new_single_hops": [
        {"cloze": "Ellie Kemper is a citizen of", "answer": "Croatia", "answer_alias": ["HR"]}
    ],
    "orig": {
        "new_triples": [["Q72077", "P27", "Q224"]],
        "new_triples_labeled": [["Ellie Kemper", "country of citizenship", "Croatia"]],
    },
}


def test_counterfact_record_becomes_a_templated_edit() -> None:
    edit = counterfact_edit(COUNTERFACT, "import:cf.json")
    assert edit.prompt == "The mother tongue of {} is"
    assert (edit.subject, edit.target_new, edit.target_true) == (
        "Danielle Darrieux",
        "English",
        "French",
    )
    assert edit.statement == "The mother tongue of Danielle Darrieux is English."
    assert edit.source == "import:cf.json#0"


def test_zsre_record_becomes_a_question_edit() -> None:
    edit = zsre_edit(ZSRE, "import:z.json", 7)
    assert edit.prompt == "What is the product made by {}?"
    assert edit.target_true == "uniform" and edit.target_new == "unmanned aircraft"
    assert edit.statement == "What is the product made by UniFirst? unmanned aircraft."


def test_mquake_case_carries_relation_label_id_and_aliases() -> None:
    (edit,) = mquake_edits(MQUAKE, "import:mq.json")
    assert edit.relation == "country of citizenship" and edit.relation_id == "P27"
    assert edit.statement == "Ellie Kemper is a citizen of Croatia."
    assert edit.target_aliases == ("HR",)
    assert edit.prompt == "{} is a citizen of"


@pytest.mark.parametrize(
    ("record", "fmt"), [(COUNTERFACT, "counterfact"), (ZSRE, "zsre"), (MQUAKE, "mquake")]
)
def test_format_is_detected_and_limit_counts_records(
    tmp_path: Path, record: dict[str, object], fmt: str
) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps([record, record, record]))
    assert detect_format(path) == fmt
    assert len(read_edits(path, limit=2)) == 2


def test_jsonl_round_trip_keeps_every_field(tmp_path: Path) -> None:
    edits = [
        parse_edit({"subject": "A", "relation": "r", "target_new": "B", "status": "superseded"}),
        parse_edit({"statement": "Free text, «unicode»."}),
    ]
    path = tmp_path / "out.jsonl"
    assert write_jsonl(edits, path) == 2
    assert read_edits(path) == edits


def test_bad_files_give_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValidationError, match="cannot read"):
        read_edits(bad, "counterfact")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"prompt": "x"}]))
    with pytest.raises(ValidationError, match="not a counterfact file"):
        read_edits(wrong, "counterfact")
    with pytest.raises(ValidationError, match="cannot tell the format"):
        detect_format(wrong)
