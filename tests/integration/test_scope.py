"""The trained scope classifier: the shipped weights on real retrieval, training
reproducibility on a slice of the training data, and ``kme scope eval``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kme_rag.memory.edit import parse_edit
from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.store import EditMemory
from kme_rag.scope.classifier import TrainedScope
from kme_rag.scope.training import TrainParams, train_scope
from kme_rag.settings import Settings
from tests.integration.test_cli import kme


@pytest.fixture
def stocked(tmp_path: Path, embedder: MiniLMEmbedder) -> EditMemory:
    memory = EditMemory.open(Settings(store=tmp_path / "store"), embedder=embedder)
    edits = [
        ("Eiffel Tower", "{} is located in the city of", "Rome"),
        ("Danielle Darrieux", "The mother tongue of {} is", "English"),
        ("BBC Radio", "{} is based in", "Sheffield"),
        ("Hank Aaron", "{} professionally plays the sport", "basketball"),
    ]
    memory.add_many(
        [parse_edit({"subject": s, "relation": r, "target_new": o}) for s, r, o in edits]
    )
    return memory


def decided(memory: EditMemory, scope: TrainedScope, query: str) -> list[str]:
    decision = scope.decide(query, memory.candidates(query, k=4))
    return [e.subject or "" for e in decision.in_scope]


@pytest.mark.parametrize(
    ("query", "subject"),
    [
        ("The Eiffel Tower is located in the city of", "Eiffel Tower"),
        pytest.param(
            "Where is the Eiffel Tower?",
            "Eiffel Tower",
            marks=pytest.mark.xfail(
                strict=True,
                reason="a known regression of the ParaRel-trained classifier (2026-12-03): "
                "a bare 'Where is X?' scores 0.12 against 'X is located in the city of' "
                "(threshold 0.28; v4: 0.046 against 0.422); 'Which city is X in?' passes",
            ),
        ),
        pytest.param(
            "Where is the Eiffel Tower located?",
            "Eiffel Tower",
            marks=pytest.mark.xfail(
                strict=True,
                reason="a known regression of the relation-id negatives (v4, 2026-12-03): "
                "0.175 against 'X is located in the city of' (threshold 0.422; v3 passed); "
                "'Which city is X in?' scores 0.97",
            ),
        ),
        ("Which city is the Eiffel Tower in?", "Eiffel Tower"),
        ("Danielle Darrieux is a native speaker of", "Danielle Darrieux"),
        pytest.param(
            "What language did Danielle Darrieux grow up speaking?",
            "Danielle Darrieux",
            marks=pytest.mark.xfail(
                strict=True,
                reason="a known regression of the relation-id negatives (v4, 2026-12-03): "
                "0.420 against 'The mother tongue of X is', just under the threshold 0.422",
            ),
        ),
        ("Which sport does Hank Aaron play?", "Hank Aaron"),
    ],
)
def test_paraphrases_of_an_edit_are_in_scope(
    stocked: EditMemory, embedder: MiniLMEmbedder, query: str, subject: str
) -> None:
    assert decided(stocked, TrainedScope(embedder), query) == [subject]


@pytest.mark.parametrize(
    "query",
    [
        "Who designed the Eiffel Tower?",  # same subject, another relation
        "When was Danielle Darrieux born?",
        "BBC Radio 1, from",  # a longer name: another entity
        "Michel Rocard is a native speaker of",  # same relation, another subject
        "What is the capital of France?",  # unrelated
        "Write a short poem about the Eiffel Tower.",
    ],
)
def test_other_questions_are_out_of_scope(
    stocked: EditMemory, embedder: MiniLMEmbedder, query: str
) -> None:
    assert decided(stocked, TrainedScope(embedder), query) == []


def test_unstructured_edits_fall_back_to_the_similarity_cut(
    stocked: EditMemory, embedder: MiniLMEmbedder
) -> None:
    stocked.add(parse_edit({"statement": "The Louvre museum moved to Lyon in 2026."}))
    scope = TrainedScope(embedder)
    hits = stocked.candidates("Where is the Louvre museum now?")
    assert any(
        not e.structured for e in scope.decide("Where is the Louvre museum now?", hits).in_scope
    )


def _slice_of_training_data(data_dir: Path, root: Path) -> Path:
    """A small copy of the training files (the evaluation files only to filter MQuAKE)."""
    for sub in ("counterfact", "zsre", "mquake/prompts"):
        (root / sub).mkdir(parents=True)
    cf = json.loads((data_dir / "counterfact" / "counterfact-train.json").read_text())
    (root / "counterfact" / "counterfact-train.json").write_text(json.dumps(cf[:400]))
    mq = json.loads((data_dir / "mquake" / "scope-pairs-cls-filtered.json").read_text())
    (root / "mquake" / "scope-pairs-cls-filtered.json").write_text(json.dumps(mq[:200]))
    for name in (
        "zsre/zsre_mend_train-1k.json",
        "mquake/prompts/question_templates.json",
        "mquake/MQuAKE-CF-3k-subset354.json",
        "mquake/MQuAKE-CF-slice300.json",
        "mquake/MQuAKE-T-first50.json",
    ):
        shutil.copy(data_dir / name, root / name)
    return root


@pytest.mark.slow
def test_training_is_reproducible_and_learns(
    data_dir: Path, embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    root = _slice_of_training_data(data_dir, tmp_path / "data")
    params = TrainParams(epochs=4)
    first = train_scope(root, embedder, tmp_path / "a" / "w.npz", params, progress=False)
    second = train_scope(root, embedder, tmp_path / "b" / "w.npz", params, progress=False)
    assert np.array_equal(first.w1, second.w1) and first.threshold == second.threshold
    card = json.loads((tmp_path / "a" / "w.json").read_text())
    assert card["params"]["seed"] == 0 and card["counts"]["mquake_dropped_eval"] > 0
    assert card["validation"]["balanced_accuracy"] > 0.9  # far above chance on held-out edits


def test_shipped_weights_have_their_card() -> None:
    from kme_rag.scope.classifier import SHIPPED_WEIGHTS, ScopeWeights

    weights = ScopeWeights.load(SHIPPED_WEIGHTS)
    assert 0 < weights.threshold < 1
    assert weights.card["validation"]["balanced_accuracy"] > 0.97
    assert set(weights.card["data"]) >= {"counterfact/counterfact-train.json"}


@pytest.mark.slow
def test_scope_eval_cli_reports_the_documented_fields(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KME_DATA_DIR", str(data_dir))
    done = kme(
        tmp_path / "store",
        "scope",
        "eval",
        "--edits", "80", "--queries", "40", "--unrelated", "40", "--json",
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert set(result) >= {"recall", "specificity", "threshold", "latency_ms", "n_in", "n_out"}
    # per asked edit: prompt, paraphrase, casual paraphrase in; neighbour, 2 same-subject out
    assert result["n_in"] == 120 and result["n_out"] <= 40 + 80 + 40
    assert set(result["by_kind"]) == {
        "prompt", "rephrase", "casual", "neighbourhood", "same-subject", "unrelated"
    }  # fmt: skip
    assert result["by_kind"]["same-subject"]["n"] == 80
    assert result["recall"] >= 0.95 and result["specificity"] >= 0.95
    assert result["latency_ms"]["p50"] < 50
