"""Render the `kme scope eval --out` results of one folder as a Markdown table.

    .venv/bin/python benchmarks/experiments/scope_table.py benchmarks/results/2026-11-25

Reads every ``scope-*.json`` there and writes ``scope.md`` beside them: the trained
classifier and the similarity baseline, per number of stored edits.

Wrote ``results/2026-11-25/scope.md``; REPORT.md has no scope section, so this stays
until it does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kme_rag.report.markdown import write_markdown


def rows(result: dict[str, object]) -> list[str]:
    models: dict[str, dict[str, object]] = result["models"]  # type: ignore[assignment]
    out = []
    for name, label in (
        ("classifier", "trained classifier"),
        ("similarity", "similarity baseline"),
    ):
        m = models[name]
        latency: dict[str, float] = m["latency_ms"]  # type: ignore[assignment]
        cells = [
            f"{result['n_edits']:,}",
            label,
            f"{m['threshold']}",
            f"{float(m['recall']) * 100:.2f}%",  # type: ignore[arg-type]
            f"{float(m['specificity']) * 100:.2f}%",  # type: ignore[arg-type]
            f"{latency['p50']} / {latency['p95']}",
        ]
        out.append("| " + " | ".join(cells) + " |")
    return out


def main(folder: Path) -> None:
    results = sorted(
        (json.loads(p.read_text()) for p in folder.glob("scope-*.json")),
        key=lambda r: int(r["n_edits"]),
    )
    lines = [
        "# Scope decision on held-out CounterFact edits (counterfact-edit.json)",
        "",
        "In scope: each asked edit's prompt and paraphrase (recall: its own edit, or the edit",
        "that superseded it, judged in scope). Out of scope: the neighbourhood prompts (less",
        "those that ask another stored edit's relation of its subject) and unrelated questions",
        "(zsRE evaluation `loc`). Latency: the scope decision alone for one query against its",
        "candidates (the retrieval is timed separately in the JSON).",
        "",
        "| edits stored | scope model | threshold | recall | specificity | decision ms p50 / p95 |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for result in results:
        lines += rows(result)
    lines.append("")
    for result in results:
        lines.append(
            f"- {result['n_edits']:,} edits: n_in {result['n_in']}, n_out {result['n_out']} "
            f"({result['n_out_by_kind']}), conflicts left out {result['conflicts_excluded']}, "
            f"retrieval recall {result['retrieval_recall']}, "
            f"retrieval ms {result['retrieval_ms']}; "
            f"`{result['command']}` on {result['date']} ({result['machine']})"
        )
    write_markdown(folder / "scope.md", lines)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
