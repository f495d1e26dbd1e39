"""The scale benchmark's filler: real subjects first, then generated ones like them."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from kme_rag.bench.scale import _cloze_pattern, _name, _named, filler


def test_the_filler_runs_through_its_sources_in_order_and_leaves_out_probed_subjects(
    data_dir: Path,
) -> None:
    train = json.loads((data_dir / "counterfact" / "counterfact-train.json").read_text())
    excluded = {_name(train[0]["subject"])}
    edits = list(itertools.islice(filler(data_dir, excluded, skip_eval=200), 60_000))
    sources = [e.source.split("#")[0] for e in edits]
    kinds = list(dict.fromkeys(sources))
    assert kinds == [
        "scale:counterfact-train",
        "scale:counterfact-eval",
        "scale:trex",
        "scale:generated",
    ]
    assert all(e.subject and _name(e.subject) not in excluded for e in edits)
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
    assert {"eiffel tower", "the eiffel tower", "where", "tower really"} <= named
    assert _name("Murder, She Wrote") in _named(iter(["Murder, She Wrote was aired on"]))


def test_a_scale_result_is_its_own_kind_and_renders_a_column_per_size() -> None:
    from kme_rag.bench.scale import markdown
    from kme_rag.report.results import Result, classify
    from kme_rag.report.tables import scale_table

    def size(n: int, rate: float) -> dict[str, object]:
        return {
            "size": n,
            "import": {"edits_per_s": rate, "embedder_batched_per_s": 500.0, "ratio": rate / 500},
            "open": {
                "from_snapshot_s": 1.2,
                "first_from_snapshot_s": 1.3,
                "rebuilt_s": 3.0,
                "peak_rss_mb": 300.0,
            },
            "decision_ms": {"p50": 14.0, "p95": 23.0},
            "plan_ms": {"p50": 14.2, "p95": 23.5},
            "locality": {"same_subject": 0.97, "neighbour": 0.99},
            "routed": {
                "prompt": 1.0,
                "paraphrase": 0.985,
                "casual": 0.985,
                "same_subject": 0.97,
                "neighbour": 0.99,
            },
            "changed": [],
        }

    data = {
        "kind": "scale",
        "dataset": "store:embedded",
        "store": "embedded",
        "cases": 2,
        "probes": 12,
        "command": "kme bench scale",
        "date": "2026-12-04",
        "machine": {},
        "sizes": [size(10_000, 350.0), size(100_000, 250.0)],
    }
    assert classify(data) == "scale"
    table = scale_table([Result("scale", data, "scale-embedded.json")])
    assert table[0] == "| embedded store (`scale-embedded.json`) | 10,000 | 100,000 |"
    assert "| import / embedder | 70.0% | 50.0% |" in table
    assert "| same-subject locality (answers) | 97.0% | 97.0% |" in markdown(data)
