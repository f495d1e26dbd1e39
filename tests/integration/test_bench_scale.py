"""``kme bench scale`` end to end on a small store: every figure measured, the table written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bench_scale_measures_each_size(data_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "KME_DATA_DIR": str(data_dir), "KME_STORE": str(tmp_path / "store")}
    out = tmp_path / "scale.json"
    command = ["bench", "scale", "--sizes", "60,400", "--cases", "10", "--repeats", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "kme_rag", *command, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["command"].startswith("kme bench scale") and result["probes"] == 60
    small, large = result["sizes"]
    assert (small["stored"], large["stored"]) == (60, 400)
    assert large["import"]["edits"] == 340 and large["import"]["edits_per_s"] > 0
    assert not large["open"]["snapshot"]  # saved from 5,000 edits (test_snapshot.py)
    assert large["open"]["facts"] == large["active"] > 300
    for size in (small, large):
        assert 0 < size["decision_ms"]["p50"] <= size["decision_ms"]["p95"]
        assert set(size["locality"]) == {"neighbour", "same_subject"}
        kinds = {"prompt", "paraphrase", "casual", "neighbour", "same_subject"}
        assert set(size["routed"]) == kinds
        assert size["routed"]["prompt"] >= 0.9  # the cases' own prompts find their edits
    table = out.with_suffix(".md").read_text()
    assert "| same-subject locality (answers) |" in table and "| 60 | 400 |" in table
