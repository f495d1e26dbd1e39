"""Load result JSONs from result folders and sort them by what they measured.

A result's *kind* comes from its content, never its file name: ``kind`` (curves, the
bench-all manifest), ``dataset`` starting with ``mquake:`` (multi-hop), ``probability``
(ROME/MEMIT), else ``metrics`` with ``efficacy`` (single-hop). When several results
measure the same thing (same kind, dataset, method and variant — for a weight edit of all
edits at once, the same batch size; for a bench-all manifest, the same selection of runs),
the newest ``date`` wins.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Result", "Results", "classify", "latest", "load_folder", "load_results"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """One result JSON: what it measured and where it lies (relative to the report)."""

    kind: str  # single | multihop | weights | scalability | retainability | bench-all | natural
    data: dict[str, Any]
    path: str

    @property
    def source(self) -> str:
        """The table cell naming the file, marked when its figures were rescored."""
        rescored = self.data.get("rescored")
        return f"`{self.path}`" + (f" (rescored {rescored['date'][:10]})" if rescored else "")

    @property
    def key(self) -> tuple[str, ...]:
        d = self.data
        if self.kind == "bench-all":  # the whole plan, or one selection of its runs
            return (self.kind, str(d.get("size")), ",".join(d.get("only") or ()))
        variant = str(d.get("scope") or d.get("mode") or "")
        if d.get("answer") == "generate":  # the same route with nothing prefilled
            variant += " generate"
        if d.get("edits_as") in ("sentence", "passage"):  # the edits stored as free text
            variant += f" {d['edits_as']}"
        if "single_hop_accuracy" in d.get("metrics", {}):  # with the edited hops asked alone
            variant += " single-hop"
        if self.kind == "freetext":  # the reader and the statement gate (ablations)
            variant += f"{d.get('extractor')} gate={d.get('statement_gate')}"
        if self.kind == "weights" and d.get("edits_mode") == "all":
            variant += f"batch {d.get('n')}"  # MEMIT of 200 and of 1,000 edits: two regimes
        return (
            self.kind,
            str(d.get("dataset")),
            str(d.get("method")),
            variant,
            str(d.get("edits_mode")),
        )


@dataclass
class Results:
    """Results grouped by kind, newest per key, plus per-probe latencies by path."""

    by_kind: dict[str, list[Result]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def of(self, kind: str) -> list[Result]:
        return self.by_kind.get(kind, [])


def classify(data: dict[str, Any]) -> str | None:
    """The kind of a result JSON, or None for files that are not run results."""
    kind = data.get("kind")
    if kind in (
        "scalability",
        "retainability",
        "bench-all",
        "natural",
        "conversations",
        "scale",
        "freetext",
    ):
        return str(kind)
    if str(data.get("dataset", "")).startswith("mquake:"):
        return "multihop"
    if "probability" in data:
        return "weights"
    if "efficacy" in data.get("metrics", {}):
        return "single"
    return None


def latest(results: Iterable[Result]) -> list[Result]:
    """The newest result per key, in a stable order (kind, dataset, method)."""
    best: dict[tuple[str, ...], Result] = {}
    for result in results:
        old = best.get(result.key)
        if old is None or str(result.data.get("date", "")) >= str(old.data.get("date", "")):
            best[result.key] = result
    return sorted(best.values(), key=lambda r: r.key)


def _probe_latencies(cases: Path) -> list[float]:
    out = []
    for line in cases.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        out += [
            float(row[p]["latency_ms"])
            for p in ("prompt", "paraphrase", "locality")
            if isinstance(row.get(p), dict) and "latency_ms" in row[p]
        ]
    return out


def load_folder(folder: Path, relative_to: Path) -> tuple[list[Result], dict[str, list[float]]]:
    """Every run result in ``folder`` and the per-probe latencies of single-hop runs."""
    found, latencies = [], {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("skipping %s: not JSON", path)
            continue
        kind = classify(data) if isinstance(data, dict) else None
        if kind is None:
            continue
        rel = str(path.relative_to(relative_to)) if path.is_relative_to(relative_to) else str(path)
        found.append(Result(kind, data, rel))
        cases = path.with_suffix(".cases.jsonl")
        if kind in ("single", "weights") and cases.is_file():
            latencies[rel] = _probe_latencies(cases)
    return found, latencies


def load_results(folders: Sequence[Path], relative_to: Path) -> Results:
    """The newest result per key over ``folders`` (later folders do not override newer
    dates: the ``date`` field decides)."""
    every: list[Result] = []
    latencies: dict[str, list[float]] = {}
    for folder in folders:
        found, lat = load_folder(folder, relative_to)
        every += found
        latencies.update(lat)
    results = Results(latencies=latencies)
    for result in latest(every):
        results.by_kind.setdefault(result.kind, []).append(result)
    return results
