"""Rescoring a stored result with today's matcher (kme bench rescore)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kme_rag.bench.rescore import rescore

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def test_a_result_scored_by_an_older_matcher_moves_and_keeps_its_run_figures(
    tmp_path: Path,
) -> None:
    # scored on 2026-11-25, before typographic quotes counted as punctuation (f872e5d)
    source = RESULTS / "2026-11-25" / "counterfact-kme-similarity.json"
    result = json.loads(source.read_text())
    result["metrics"] = result.get("metrics_as_run", result["metrics"])
    result.pop("metrics_as_run", None)
    result.pop("rescored", None)
    path = tmp_path / source.name
    path.write_text(json.dumps(result))
    shutil.copy(source.parent / result["cases_file"], tmp_path / result["cases_file"])

    assert rescore(path, tmp_path, command="test", write=False) == {"generality": [0.946, 0.966]}
    assert json.loads(path.read_text())["metrics"]["generality"] == 0.946  # nothing written
    rescore(path, tmp_path, command="test")
    written = json.loads(path.read_text())
    assert written["metrics"]["generality"] == 0.966
    assert written["metrics_as_run"]["generality"] == 0.946
    assert written["rescored"]["moved"] == {"generality": [0.946, 0.966]}
    # a second pass changes nothing more: the figures already are today's
    rescore(path, tmp_path, command="test")
    assert json.loads(path.read_text())["metrics"] == written["metrics"]


def test_a_result_scored_by_todays_matcher_does_not_move(tmp_path: Path) -> None:
    source = RESULTS / "2026-12-02" / "zsre-kme.json"
    result = json.loads(source.read_text())
    assert rescore(source, tmp_path, command="test", write=False) == {}
    assert json.loads(source.read_text()) == result
