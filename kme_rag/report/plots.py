"""The report's figures as PNG files (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kme_rag.report.results import Result
from kme_rag.report.stats import wilson

__all__ = ["latency_plot", "locality_generality_plot", "retainability_plot", "scalability_plot"]

CURVE_METRICS = (
    ("efficacy", "efficacy"),
    ("generality", "generality"),
    ("locality", "locality_same"),
)


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curve(
    ax: Any, xs: Sequence[int], points: Sequence[dict[str, Any]], label: str, key: str
) -> None:
    """One metric against x with Wilson 95% error bars."""
    ks = [int(p["counts"][key]) for p in points]
    ns = [int(p["counts"]["cases"]) for p in points]
    intervals = [wilson(k, n) for k, n in zip(ks, ns, strict=True)]
    ys = [i.value * 100 for i in intervals]
    low = [max(0.0, i.value - i.low) * 100 for i in intervals]  # float noise at k = n
    high = [max(0.0, i.high - i.value) * 100 for i in intervals]
    ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=label)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scalability_plot(results: Sequence[Result], path: Path) -> Path:
    """Efficacy, generality and locality against edits stored (log x), per method."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for result in results:
        points = result.data["points"]
        xs = [int(p["edits_stored"]) for p in points]
        for name, key in CURVE_METRICS:
            _curve(ax, xs, points, f"{result.data['method']}: {name}", key)
    ax.set_xscale("log")
    ax.set_xlabel("edits stored")
    ax.set_ylabel("% of probed cases (95% Wilson)")
    ax.set_title("Scalability (CounterFact)")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def retainability_plot(runs: Sequence[Result], decays: Sequence[Result], path: Path) -> Path:
    """Efficacy and locality of the oldest edits as edits arrive one by one, per method
    (generation metrics), plus sequential ROME's probability decay when present."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for result in runs:
        points = result.data["points"]
        xs = [int(p["edits_applied"]) for p in points]
        for name, key in (("efficacy", "efficacy"), ("locality", "locality_same")):
            _curve(ax, xs, points, f"{result.data['method']}: {name}", key)
    for result in decays:
        decay = result.data["decay"]
        xs = [int(c["edits_applied"]) for c in decay]
        efficacy = [float(c["efficacy"]) * 100 for c in decay]
        ax.plot(xs, efficacy, marker="s", label="rome sequential: efficacy (P)")
    ax.set_xscale("log")
    ax.set_xlabel("edits applied one at a time")
    ax.set_ylabel("% of the oldest edits (95% Wilson)")
    ax.set_title("Retainability")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def locality_generality_plot(results: Sequence[Result], path: Path) -> Path:
    """One point per (dataset, method): generality against locality."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for result in results:
        counts = result.data.get("counts") or {}
        if not counts.get("cases"):
            continue
        n = counts["cases"]
        x, y = counts["locality_same"] / n * 100, counts["generality"] / n * 100
        ax.scatter([x], [y])
        ax.annotate(f"{result.data['dataset']}: {result.data['method']}", (x, y), fontsize=7)
    ax.set_xlabel("locality (% identical to the unedited answer)")
    ax.set_ylabel("generality (% of paraphrases)")
    ax.set_xlim(-5, 105)
    ax.set_ylim(-5, 105)
    ax.set_title("Locality vs generality")
    return _save(plt, fig, path)


def latency_plot(latencies: dict[str, list[float]], path: Path) -> Path:
    """Per-probe answer latency of each run (box plot, log scale)."""
    plt = _figure()
    labels = [k for k, v in latencies.items() if v]
    fig, ax = plt.subplots(figsize=(7, 0.5 * max(len(labels), 4) + 1))
    ax.boxplot([latencies[k] for k in labels], vert=False, whis=(5, 95), showfliers=False)
    names = [k.removeprefix("results/").removesuffix(".json") for k in labels]
    ax.set_yticks(range(1, len(labels) + 1), names, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("ms per probe (box: p25-p75, whiskers: p5-p95)")
    ax.set_title("Answer latency")
    return _save(plt, fig, path)
