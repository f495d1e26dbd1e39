"""Render the `kme bench mquake` summaries of one results folder as a Markdown table.

    .venv/bin/python benchmarks/experiments/mquake_table.py benchmarks/results/2026-11-25

Reads every ``mquake-*.json`` there and writes ``mquake.md`` beside them: one row per
run, the plain mode and the labelled known-facts mode on separate rows, every accuracy
next to the prior baseline computed the same way.

Wrote ``results/2026-11-25/mquake.md``; REPORT.md's MQuAKE table has no by-hops,
original-answer, unedited-hop or chain-analysis columns, so this stays until it does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kme_rag.report.markdown import command_lines, write_markdown


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def row(summary: dict[str, object]) -> str:
    m: dict[str, object] = summary["metrics"]  # type: ignore[assignment]
    latency: dict[str, float] = summary["latency_ms_per_question"]  # type: ignore[assignment]
    method = str(summary["method"])
    method = {"none": "unedited model", "mello": "MeLLo (loose loop)", "kme": "kme graph walk"}[
        method
    ]
    if summary.get("variant"):
        method += " (v1: no type fit)"
    if str(summary.get("mode", "plain")).startswith("known"):
        method += " **+ known facts (labelled mode)**"
    hops: dict[str, float] = m["accuracy_by_hops"]  # type: ignore[assignment]
    cells = [
        str(summary["dataset"]).removeprefix("mquake:").removesuffix(".json"),
        method,
        f"{summary['n']}",
        str(summary["edits_mode"]),
        pct(m["multihop_accuracy"]),  # type: ignore[arg-type]
        pct(m["question_accuracy"]),  # type: ignore[arg-type]
        f"{pct(m['known_hops_accuracy'])} ({m['known_hops_cases']})",  # type: ignore[arg-type]
        " / ".join(f"{k} {v * 100:.0f}%" for k, v in hops.items()),
        pct(m["prior_baseline"]),  # type: ignore[arg-type]
        pct(m["original_multihop_accuracy"]),  # type: ignore[arg-type]
        pct(m["prior_baseline_original"]),  # type: ignore[arg-type]
        pct(m["unedited_hop_accuracy"]),  # type: ignore[arg-type]
        f"{latency['p50'] / 1000:.2f} / {latency['p95'] / 1000:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    folder = Path(sys.argv[1])
    files = sorted(folder.glob("mquake-*.json"))
    summaries = [json.loads(p.read_text()) for p in files if not p.name.endswith(".chains.json")]
    chains = [json.loads(p.read_text()) for p in files if p.name.endswith(".chains.json")]
    lines = [
        f"# MQuAKE results, {folder.name}",
        "",
        "Local Gemma 3 270M (Q4_K_M) through llama.cpp, greedy. Multi-hop accuracy by the",
        "MQuAKE rule (a case is right when any of its 3 questions names the new answer or an",
        "alias); per-question accuracy; the known-hops subset is the cases whose unedited",
        "hops of the new chain the unedited model answers (count in brackets); the prior",
        "baseline always answers the most common answer of the final relation among the",
        "other cases. 'Original' columns score the original answers the same way.",
        "",
        "| file | method | cases | edits | multi-hop (new) | per question | known-hops subset "
        "| by hops | prior (new) | original answers | prior (original) | unedited hops known "
        "| s / question p50 / p95 |",
        "|---|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        *[row(s) for s in summaries],
        "",
        "Where the graph walk loses answers (`benchmarks/experiments/mquake_chains.py`, "
        "from the rows):",
        "",
        "| rows | subject linked | chain right / question | chain right / case (any of 3) "
        "| accuracy when the chain is right | model hops on right chains (right) |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {c['cases_file']} | {pct(c['subject_linked'])} | "
            f"{pct(c['chain_right_per_question'])} | {pct(c['chain_right_per_case_any_of_3'])} | "
            f"{pct(c['accuracy_when_chain_right'])} | {c['model_hops_on_right_chains']} "
            f"({pct(c['model_hop_accuracy_on_right_chains'])}) |"
            for c in chains
        ],
        "",
        *command_lines(summaries),
    ]
    print(write_markdown(folder / "mquake.md", lines), end="")


if __name__ == "__main__":
    main()
