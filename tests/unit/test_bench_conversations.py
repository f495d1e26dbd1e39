"""The held-out two-hop and follow-up set's figures (pure summarising) and its file."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from kme_rag.bench.conversations import DEFAULT_SET, summarise_conversations

ROOT = Path(__file__).resolve().parents[2]


def row(kind: str, text: str, expected: str | None, **extra: Any) -> dict[str, Any]:
    base = {
        "id": f"{kind}-x",
        "kind": kind,
        "asked": "Which city is it in?",
        "expected": expected,
        "known": True,
        "reference": "unedited",
        "reference_ms": 100.0,
        "text": text,
        "route": "ike",
        "read_as": "",
        "latency_ms": 105.0,
    }
    return base | extra


def test_each_kind_is_scored_by_what_a_user_sees() -> None:
    rows = [
        row("hop1", "Spain", "Spain", route="multihop", walker_alone={"text": "Spain"}),
        row("hop1", "Madrid", "Spain", known=False),
        row("hop2", "Perth", "Perth", route="multihop", walker_alone={"text": None}),
        row("followup", "Perth", "Perth", read_as="Which city is X in?"),
        row("followup", "Sydney", "Perth", route="passthrough"),
        row("followup_other", "unedited", None, route="passthrough"),
        row("single", "walked", None, route="multihop", reference_ms=100.0, latency_ms=900.0),
        row(
            "single",
            "unedited",
            None,
            route="passthrough",
            asked="Which country is the man who built it from?",
        ),
    ]
    summary = summarise_conversations(rows)
    figures = summary["figures"]
    assert (figures["hop1_known"]["k"], figures["hop1_known"]["n"]) == (1, 1)
    assert (figures["hop1_all"]["k"], figures["hop1_all"]["n"]) == (1, 2)
    assert figures["hop1_known_walker_alone_diagnostic"]["k"] == 1
    assert figures["hop2_known_walker_alone_diagnostic"]["k"] == 0
    assert (figures["followup"]["k"], figures["followup_resolved"]["k"]) == (1, 1)
    assert figures["followup_other_kept"]["rate"] == 1.0
    assert figures["single_kept"]["k"] == 1 and figures["single_walked_by_mistake"]["k"] == 1
    latency = summary["latency_ms"]
    assert latency["passthrough_n"] == 3 and latency["passthrough_worded_n"] == 1
    assert latency["passthrough_plain_ratio_p50"] == 1.05


def test_the_committed_set_matches_its_readme_line_and_shape() -> None:
    path = ROOT / DEFAULT_SET
    readme = (ROOT / "benchmarks" / "heldout" / "README.md").read_text(encoding="utf-8")
    line = re.search(r"sha256 \(multihop-v1\.jsonl\): ([0-9a-f]{64})", readme)
    assert line is not None
    assert hashlib.sha256(path.read_bytes()).hexdigest() == line.group(1)
    items = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    kinds = [i["kind"] for i in items]
    assert kinds.count("hop1") >= 60 and kinds.count("hop2") >= 30
    assert kinds.count("followup") >= 50
    verified = json.loads((path.parent / "verification-multihop-v1.json").read_text())
    known = {r["id"] for r in verified["rows"] if r["known"]}
    assert sum(i.startswith("hop1") for i in known) >= 60
    assert sum(i.startswith("hop2") for i in known) >= 30
    for item in items:
        assert len(item["edits"]) == 1 and item["edits"][0]["target_new"]
        if item["kind"] in ("followup", "followup_other"):
            assert [t["role"] for t in item["turns"]] == ["user", "assistant", "user"]
