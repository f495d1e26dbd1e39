"""Render the `kme bench` summaries of one results folder as a Markdown table.

    .venv/bin/python benchmarks/editing_table.py benchmarks/results/2026-11-25

Reads every ``<dataset>-<method>.json`` there and writes ``editing.md`` beside them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kme_rag.report.markdown import command_lines, write_markdown

COLUMNS = ("efficacy", "generality", "locality", "locality_leak")


def row(summary: dict[str, object]) -> str:
    metrics: dict[str, float] = summary["metrics"]  # type: ignore[assignment]
    latency: dict[str, float | None] = summary["latency_ms"]  # type: ignore[assignment]
    method = str(summary["method"])
    if method == "kme":  # runs before the trained classifier used the similarity scope
        method += f" ({summary.get('scope') or 'similarity'} scope)"
    cells = [str(summary["dataset"]), method, str(summary["n"])]
    cells += [f"{metrics[c] * 100:.1f}%" for c in COLUMNS]
    unrelated = metrics.get("locality_unrelated")
    cells.append(f"{unrelated * 100:.1f}%" if unrelated is not None else "-")
    cells += [
        f"{latency['p50']:.0f} / {latency['p95']:.0f}",
        str(latency["in_scope_ratio_p50"] or "-"),
        str(latency["out_of_scope_ratio_p50"] or "-"),
        str(summary["prompt_tokens_per_question"]),
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    folder = Path(sys.argv[1])
    files = [p for p in sorted(folder.glob("*-*.json")) if p.name.startswith(("counterf", "zsre"))]
    summaries = [json.loads(p.read_text()) for p in files]
    summaries = [s for s in summaries if "metrics" in s]
    lines = [
        f"# Editing results, {folder.name}",
        "",
        "Local Gemma 3 270M (Q4_K_M) through llama.cpp, greedy, 16 new tokens, all edits",
        "stored before asking (`--edits all`). Locality = answer identical to the unedited",
        "model's own answer in the same run; leak = the new object appears in that answer.",
        "'Locality, unrelated' leaves out locality prompts that name the subject of another",
        "stored edit (with all edits stored they are in scope of it). Latency ratios are",
        "medians against the unedited model on the same prompts, in the same run.",
        "",
        "| dataset | method | n | efficacy | generality | locality | leak | locality, unrelated "
        "| p50 / p95 ms | in-scope ratio | out-of-scope ratio | prompt tokens |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[row(s) for s in summaries],
        "",
        *command_lines(summaries),
    ]
    print(write_markdown(folder / "editing.md", lines), end="")


if __name__ == "__main__":
    main()
