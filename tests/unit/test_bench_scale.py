"""The scale benchmark's filler: real subjects first, then generated ones like them."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from kme_rag.bench.scale import _cloze_pattern, _named, filler


def test_the_filler_runs_through_its_sources_in_order_and_leaves_out_probed_subjects(
    data_dir: Path,
) -> None:
    train = json.loads((data_dir / "counterfact" / "counterfact-train.json").read_text())
    excluded = {train[0]["subject"].lower()}
    edits = list(itertools.islice(filler(data_dir, excluded, skip_eval=200), 60_000))
    sources = [e.source.split("#")[0] for e in edits]
    kinds = list(dict.fromkeys(sources))
    assert kinds == [
        "scale:counterfact-train",
        "scale:counterfact-eval",
        "scale:trex",
        "scale:generated",
    ]
    assert all(e.subject and e.subject.lower() not in excluded for e in edits)
    assert edits[0].subject == train[1]["subject"]  # the excluded first record skipped
    generated = [e for e, s in zip(edits, sources, strict=True) if s == "scale:generated"]
    assert len(generated) > 1000
    assert len({e.key for e in generated}) == len(generated)  # none supersedes another
    trex = [e for e, s in zip(edits, sources, strict=True) if s == "scale:trex"]
    assert {e.relation for e in trex} >= {"{} is located in"}
    again = list(itertools.islice(filler(data_dir, excluded, skip_eval=200), 60_000))
    assert [e.key for e in again] == [e.key for e in edits]  # seeded: the same store


def test_patterns_and_names(tmp_path: Path) -> None:
    patterns = tmp_path / "P1.jsonl"
    lines = [{"pattern": "[Y] is the capital of [X] ."}, {"pattern": "The capital of [X] is [Y] ."}]
    patterns.write_text("\n".join(json.dumps(p) for p in lines))
    assert _cloze_pattern(patterns) == "The capital of {} is"
    named = _named(iter(["Where is the Eiffel Tower, really?"]))
    assert {"eiffel tower", "the eiffel tower", "where"} <= named and "tower really?" not in named
