"""Render the ROME / MEMIT summaries of one results folder as a Markdown table.

    .venv/bin/python benchmarks/whitebox_table.py benchmarks/results/2026-12-01

Reads every ``{counterfact,zsre}-{rome,memit}*.json`` there and writes
``whitebox.md`` beside them: ROME's probability scores (with Wilson 95% intervals), the
harness's generation metrics on the cases that have them, edit time, and the decay of
sequential ROME.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kme_rag.report.markdown import (
    DASH,
    command_lines,
    markdown_table,
    pct,
    share_cell,
    write_markdown,
)

PROBABILITY = ("efficacy", "paraphrase", "neighbourhood")


def _regime(summary: dict[str, Any]) -> str:
    method, mode = summary["method"], summary["edits_mode"]
    if method == "rome":
        regime = "ROME, one at a time (undone between)" if mode == "one" else "ROME, sequential"
    else:
        regime = f"MEMIT, {summary['n']} in one batch" if mode == "all" else "MEMIT, one at a time"
    return f"{summary['dataset']}: {regime}"


def _probability_row(summary: dict[str, Any], key: str, label: str) -> list[str]:
    n = int(summary["n"])
    cells = [_regime(summary), label, str(n)]
    cells += [share_cell(round(summary[key][k] * n), n) for k in PROBABILITY]
    return cells


def _generation_row(summary: dict[str, Any]) -> list[str]:
    cases = int(summary.get("generation_cases", 0))
    if not cases:
        return [_regime(summary), str(0), DASH, DASH, DASH, DASH]
    counts = summary["counts"]
    return [
        _regime(summary),
        str(cases),
        share_cell(counts["efficacy"], cases),
        share_cell(counts["generality"], cases),
        share_cell(counts["locality_same"], cases),
        pct(summary["metrics"]["locality_leak"]),
    ]


def _reused(summary: dict[str, Any]) -> str:
    cache = summary.get("target_cache") or {}
    if not cache.get("reused"):
        return ""
    return f"; {cache['reused']} δ reused (first optimised in {cache['reused_seconds']:.0f} s)"


def _time_row(summary: dict[str, Any]) -> list[str]:
    seconds = summary["edit_seconds"]
    per_edit = seconds["per_edit_p50"]
    batch = seconds["batch"]
    stats = ", ".join(
        f"layer {k}: {v['source']}, {v['tokens']:,} tokens"
        for k, v in summary["statistics"].items()
    )
    return [
        _regime(summary),
        DASH if per_edit is None else f"{per_edit:.1f} / {seconds['per_edit_p95']:.1f}",
        DASH
        if batch is None
        else f"{batch:.0f} s ({batch / int(summary['n']):.1f} s per edit)" + _reused(summary),
        stats,
        str(summary["machine"].get("torch_threads", DASH)),
    ]


def _decay_lines(summary: dict[str, Any]) -> list[str]:
    decay = summary.get("decay")
    if not decay:
        return []
    rows = [
        [
            str(d["edits_applied"]),
            str(d["probed"]),
            pct(d["efficacy"]),
            pct(d["paraphrase"]),
            pct(d["neighbourhood"]),
        ]
        for d in decay
    ]
    header = ["edits applied", "first edits probed", "efficacy", "paraphrase", "neighbourhood"]
    return [
        f"### Sequential ROME: the first edits as more arrive ({summary['n']} edits)",
        "",
        *markdown_table(header, rows),
        "",
    ]


def main() -> None:
    folder = Path(sys.argv[1])
    files = sorted(
        path
        for dataset in ("counterfact", "zsre")
        for method in ("rome", "memit")
        for path in folder.glob(f"{dataset}-{method}*.json")
    )
    summaries = [json.loads(p.read_text()) for p in files]
    probability = [
        row
        for s in summaries
        for row in (
            _probability_row(s, "probability", "edited"),
            _probability_row(s, "unedited_probability", "unedited"),
        )
    ]
    lines = [
        f"# Weight editing (ROME, MEMIT) on Gemma 3 270M, {folder.name}",
        "",
        "CounterFact / zsRE evaluation splits, first N cases. Torch float32 on",
        "the CPU, weights converted from the bundled Q4_K_M GGUF; statistics C over WikiText-2.",
        "Probability scores as in the ROME paper: efficacy and paraphrase = P(new) > P(true)",
        "after the edit's prompt / paraphrase; neighbourhood = P(true) > P(new) after the",
        "neighbourhood prompt (mean per-token log-probability). 95% Wilson intervals.",
        "",
        "## Probability scores",
        "",
        *markdown_table(["regime", "model", "n", *PROBABILITY], probability, numeric_from=2),
        "",
        "## Generation metrics (the harness's, greedy, 16 tokens, route `weights`)",
        "",
        "Efficacy / generality: the answer contains the new object; locality: the",
        "neighbourhood answer is identical to the unedited weights' own answer in the same run.",
        "",
        *markdown_table(
            ["regime", "cases", "efficacy", "generality", "locality", "leak"],
            [_generation_row(s) for s in summaries],
        ),
        "",
        "## Edit time",
        "",
        *markdown_table(
            ["regime", "per edit p50 / p95 (s)", "batch", "statistics", "torch threads"],
            [_time_row(s) for s in summaries],
        ),
        "",
        *[line for s in summaries for line in _decay_lines(s)],
        *command_lines(summaries),
    ]
    print(write_markdown(folder / "whitebox.md", lines), end="")


if __name__ == "__main__":
    main()
