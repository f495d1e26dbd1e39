"""Write REPORT.md and its figures from the result folders under a benchmarks root."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from kme_rag.report import plots
from kme_rag.report.results import Results, load_results
from kme_rag.report.writer import render_report

__all__ = ["result_folders", "write_figures", "write_report"]

log = logging.getLogger(__name__)


def result_folders(root: Path) -> list[Path]:
    """The dated result folders under ``root/results``, oldest first: quick runs and
    ``archive/`` (superseded runs, kept with an index) are left out."""
    base = root / "results"
    return sorted(
        p
        for p in base.iterdir()
        if p.is_dir() and not p.name.endswith("-quick") and p.name != "archive"
    )


def write_figures(results: Results, folder: Path, root: Path) -> dict[str, str]:
    """Draw every figure the results allow; caption → path relative to ``root``."""
    figures: dict[str, str] = {}

    def keep(caption: str, path: Path) -> None:
        figures[caption] = str(path.relative_to(root))

    if results.of("scalability"):
        keep(
            "Scalability",
            plots.scalability_plot(results.of("scalability"), folder / "scalability.png"),
        )
    rome = [r for r in results.of("weights") if r.data.get("decay")]
    if results.of("retainability") or rome:
        keep(
            "Retainability",
            plots.retainability_plot(
                results.of("retainability"), rome, folder / "retainability.png"
            ),
        )
    singles = results.of("single") + [r for r in results.of("weights") if "counts" in r.data]
    if singles:
        keep(
            "Locality vs generality",
            plots.locality_generality_plot(singles, folder / "locality-generality.png"),
        )
    if results.latencies:
        keep("Latency", plots.latency_plot(results.latencies, folder / "latency.png"))
    return figures


def write_report(
    root: Path, *, folders: Sequence[Path] | None = None, name: str = "REPORT.md"
) -> Path:
    """Load the results (default: every dated folder), draw the figures into
    ``root/report[-quick]/`` and write ``root/<name>``; returns its path."""
    chosen = list(folders) if folders is not None else result_folders(root)
    results = load_results(chosen, root)
    quick = name != "REPORT.md"
    figures = write_figures(results, root / ("report-quick" if quick else "report"), root)
    path = root / name
    path.write_text(render_report(results, figures), encoding="utf-8")
    log.info("wrote %s from %d folders", path, len(chosen))
    return path
