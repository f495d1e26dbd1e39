"""``kme bench all --quick`` end to end: every planned run for real, then the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kme_rag.bench.plan import METHODS, plan


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_bench_all_writes_every_result_and_the_report(data_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "KME_DATA_DIR": str(data_dir), "KME_STORE": str(tmp_path / "store")}
    command = [sys.executable, "-m", "kme_rag", "bench", "all", "--quick", "--jobs", "2"]
    done = subprocess.run(
        [*command, "--results", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]

    folders = list((tmp_path / "results").glob("*-quick"))
    assert len(folders) == 1
    manifest = json.loads((folders[0] / "bench-all.json").read_text())
    failed = {r["name"]: r["stderr_tail"] for r in manifest["runs"] if r["returncode"]}
    assert not failed, failed
    assert manifest["complete"] and manifest["wall_seconds"] > 0
    assert manifest["jobs"] == 2 and {r["lane"] for r in manifest["runs"]} == {0, 1}
    assert not (folders[0] / "bench-all-partial.json").exists()
    # the weights chain ran in order in one lane: MEMIT and kme+weights read ROME's δs
    chain = [r for r in manifest["runs"] if r["name"].startswith("counterfact-")]
    chain = [r for r in chain if r["method"] in ("rome", "memit", "kme+weights")]
    assert [r["method"] for r in chain] == ["rome", "memit", "kme+weights"]
    assert len({r["lane"] for r in chain}) == 1
    for name in ("counterfact-memit-all", "counterfact-kme+weights"):
        result = json.loads((folders[0] / f"{name}.json").read_text())
        assert result["target_cache"]["reused"] == result["n"] > 0, name
        assert result["target_cache"]["computed"] == 0, name
    walk = json.loads((folders[0] / "mquake-cf3k-kme+weights.json").read_text())
    assert walk["edits_written"] >= 1 and walk["hops_probed_on"] == "the edited weights"
    assert sum(walk["routes"].values()) == 3 * walk["n"]  # the walk answered every question

    for run in plan("quick"):  # one JSON per run, each with its provenance
        result = json.loads((folders[0] / f"{run.name}.json").read_text())
        assert result["command"].startswith("kme bench ")
        assert {"date", "machine"} <= result.keys()

    report = (tmp_path / "REPORT-quick.md").read_text()
    for method in METHODS:
        assert f"| {method}" in report or f"`{method}` route" in report, method
    assert "kme+weights, on the MEMIT-edited weights" in report
    assert "## Scalability (Eq. 13/14)" in report and "## Retainability (Eq. 12)" in report
    for png in ("scalability", "retainability", "locality-generality", "latency"):
        assert (tmp_path / "report-quick" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
