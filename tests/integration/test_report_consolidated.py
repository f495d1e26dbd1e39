"""``kme+weights`` on a tiny Llama: edits stored and consolidated by MEMIT, answered from
the weights, locality against the unedited weights (the real Gemma run is in bench all)."""

from __future__ import annotations

import json
from pathlib import Path

from kme_rag.bench.harness import Case
from kme_rag.bench.memory_weights import bench_consolidated
from kme_rag.settings import Settings
from kme_rag.whitebox.architectures import architecture_of
from kme_rag.whitebox.deltastore import DeltaStore
from kme_rag.whitebox.loading import LoadedModel
from kme_rag.whitebox.session import WeightEditor
from tests.edits import EIFFEL, TINY_PARAMS
from tests.whitebox.tiny import tiny_llama
from tests.whitebox.words import word_tokenizer

TEXTS = ("The city of Eiffel Tower Rome Paris", "The city of Louvre", "Tower Louvre is")


def tiny_weights(root: Path) -> WeightEditor:
    model = tiny_llama(0)
    tokenizer = word_tokenizer(TEXTS)
    loaded = LoadedModel(model, tokenizer, architecture_of(model), "test:tiny", Path("tiny"))
    store = DeltaStore(root, loaded.identity)
    return WeightEditor(loaded, store, corpus=(), cache_dir=root / "cache", params=TINY_PARAMS)


def test_kme_weights_answers_from_the_consolidated_weights(tmp_path: Path) -> None:
    weights = tiny_weights(tmp_path / "weights")
    prompt = "The city of Eiffel Tower"
    cases = [Case("0", EIFFEL, "cloze", prompt, prompt, "The city of Louvre", "Paris")]
    out = tmp_path / "kme-weights.json"
    settings = Settings(store=tmp_path / "store")
    summary = bench_consolidated(settings, "tiny", cases, out, {"command": "test"}, 4, weights)

    assert json.loads(out.read_text())["method"] == "kme+weights"
    assert summary["edit_seconds"]["batch"] > 0
    assert len(weights.records) == 1  # one MEMIT batch for all the edits
    (row,) = [
        json.loads(line) for line in out.with_suffix(".cases.jsonl").read_text().split("\n") if line
    ]
    assert {row[p]["route"] for p in ("prompt", "paraphrase", "locality")} == {"weights"}
    assert row["prompt"]["text"] != row["prompt"]["reference"]  # the weights changed it
    assert summary["counts"]["cases"] == 1
