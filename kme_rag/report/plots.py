"""The report's figures as PNG files (matplotlib, Agg backend, no display needed).

Each method keeps one colour in every figure and each metric one marker and line style,
so the legends read the same way throughout. Series that share x values are spread a
little sideways (on the log axes) so that their error bars do not hide each other. The
locality-vs-generality scatter numbers its points, lists them in a key, and enlarges the
crowded top-right corner in a second panel; its labels are placed so that none overlaps
another label or a point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kme_rag.report.intervals import wilson
from kme_rag.report.results import Result
from kme_rag.report.tables import method_label

__all__ = [
    "ScatterPoint",
    "dodge",
    "latency_plot",
    "locality_generality_figure",
    "locality_generality_plot",
    "retainability_plot",
    "scalability_plot",
    "scatter_points",
]

CURVE_METRICS = (
    ("efficacy", "efficacy"),
    ("generality", "generality"),
    ("locality", "locality_same"),
)
METHOD_COLOURS = {
    "kme": "C0",
    "kme+weights": "C9",
    "ike": "C2",
    "rome": "C3",
    "memit": "C1",
    "none": "C7",
}
OTHER_COLOURS = ("C4", "C5", "C6", "C8")
METRIC_STYLES = {  # metric → (marker, line style)
    "efficacy": ("o", "-"),
    "generality": ("s", "--"),
    "locality": ("^", ":"),
    "efficacy (P)": ("D", "-."),
}
METRIC_COLOURS = {"efficacy": "C0", "generality": "C1", "locality": "C2"}  # one method shown
DATASET_MARKERS = {"counterfact": "o", "zsre": "s"}
OTHER_MARKERS = ("D", "^", "v", "P")
DODGE_DECADES = 0.03  # sideways step between series on a log axis, in powers of ten
ZOOM_FROM = 90.0  # the scatter enlarges the corner where both axes are at least this (%)
NEAR = 0.03  # scatter points closer than this (fraction of the axes) share one label
DPI = 110


def _figure() -> Any:
    from kme_rag.extras import require

    matplotlib = require("matplotlib", "plotting")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _colour(method: str) -> str:
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return OTHER_COLOURS[sum(map(ord, method)) % len(OTHER_COLOURS)]


def dodge(xs: Sequence[float], index: int, count: int) -> list[float]:
    """``xs`` shifted sideways for series ``index`` of ``count`` on a log axis: the
    series sit symmetrically around the true x, ``DODGE_DECADES`` apart."""
    factor = 10 ** ((index - (count - 1) / 2) * DODGE_DECADES)
    return [x * factor for x in xs]


def _curve(
    ax: Any,
    xs: Sequence[float],
    points: Sequence[dict[str, Any]],
    method: str,
    metric: str,
    key: str,
    colour: str | None = None,
) -> None:
    """One metric against x with Wilson 95% error bars, in the method's colour unless
    ``colour`` is given."""
    ks = [int(p["counts"][key]) for p in points]
    ns = [int(p["counts"]["cases"]) for p in points]
    intervals = [wilson(k, n) for k, n in zip(ks, ns, strict=True)]
    ys = [i.value * 100 for i in intervals]
    low = [max(0.0, i.value - i.low) * 100 for i in intervals]  # float noise at k = n
    high = [max(0.0, i.high - i.value) * 100 for i in intervals]
    marker, line = METRIC_STYLES[metric]
    bars = ax.errorbar(
        xs,
        ys,
        yerr=[low, high],
        color=colour or _colour(method),
        marker=marker,
        linestyle=line,
        markersize=5,
        capsize=2,
        elinewidth=0.8,
        label=f"{method}: {metric}",
    )
    for part in bars.lines[2]:  # the bars lighter than the line, so the curves read first
        part.set_alpha(0.45)


def _finish_curves(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_ylim(-3, 103)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel(f"{xlabel} (series drawn slightly apart)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=labels.__getitem__)  # grouped by method
    ax.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=3,
    )


def scalability_plot(results: Sequence[Result], path: Path) -> Path:
    """Efficacy, generality and locality against edits stored (log x), per method; with
    one method the metrics get their own colours."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    count = len(results) * len(CURVE_METRICS)
    for r, result in enumerate(results):
        points = result.data["points"]
        xs = [int(p["edits_stored"]) for p in points]
        for m, (name, key) in enumerate(CURVE_METRICS):
            at = dodge(xs, r * len(CURVE_METRICS) + m, count)
            colour = METRIC_COLOURS[name] if len(results) == 1 else None
            _curve(ax, at, points, str(result.data["method"]), name, key, colour)
    _finish_curves(
        ax, "edits stored", "% of probed cases (95% Wilson)", "Scalability (CounterFact)"
    )
    return _save(plt, fig, path)


def retainability_plot(runs: Sequence[Result], decays: Sequence[Result], path: Path) -> Path:
    """Efficacy and locality of the oldest edits as edits arrive one by one, per method
    (generation metrics), plus sequential ROME's probability decay when present."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    metrics = (("efficacy", "efficacy"), ("locality", "locality_same"))
    count = len(runs) * len(metrics) + len(decays)
    for r, result in enumerate(runs):
        points = result.data["points"]
        xs = [int(p["edits_applied"]) for p in points]
        for m, (name, key) in enumerate(metrics):
            at = dodge(xs, r * len(metrics) + m, count)
            _curve(ax, at, points, str(result.data["method"]), name, key)
    for d, result in enumerate(decays):
        decay = result.data["decay"]
        at = dodge([int(c["edits_applied"]) for c in decay], len(runs) * len(metrics) + d, count)
        efficacy = [float(c["efficacy"]) * 100 for c in decay]
        marker, line = METRIC_STYLES["efficacy (P)"]
        ax.plot(
            at,
            efficacy,
            color=_colour("rome"),
            marker=marker,
            linestyle=line,
            markersize=5,
            label="rome sequential: efficacy (P)",
        )
    _finish_curves(
        ax, "edits applied one at a time", "% of the oldest edits (95% Wilson)", "Retainability"
    )
    return _save(plt, fig, path)


@dataclass(frozen=True)
class ScatterPoint:
    """One run in the locality-vs-generality scatter (percentages)."""

    number: int
    name: str  # "dataset: method (variant)", as the report's tables name the run
    method: str
    dataset: str
    locality: float
    generality: float


def scatter_points(results: Sequence[Result]) -> list[ScatterPoint]:
    """The runs that have counts, numbered from 1 in (dataset, name) order."""
    rows = []
    for result in results:
        counts = result.data.get("counts") or {}
        if not counts.get("cases"):
            continue
        n = counts["cases"]
        dataset, method = str(result.data.get("dataset")), str(result.data.get("method"))
        name = f"{dataset}: {method_label(result.data)}"
        locality, generality = counts["locality_same"] / n * 100, counts["generality"] / n * 100
        rows.append((dataset, name, method, locality, generality))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [ScatterPoint(i, name, m, d, x, y) for i, (d, name, m, x, y) in enumerate(rows, 1)]


def _marker(dataset: str) -> str:
    if dataset in DATASET_MARKERS:
        return DATASET_MARKERS[dataset]
    return OTHER_MARKERS[sum(map(ord, dataset)) % len(OTHER_MARKERS)]


def _groups(ax: Any, points: Sequence[ScatterPoint]) -> list[list[ScatterPoint]]:
    """Points within ``NEAR`` of each other (in axes fractions) share one label."""
    to_axes = ax.transData + ax.transAxes.inverted()
    groups: list[list[ScatterPoint]] = []
    spots: list[list[tuple[float, float]]] = []
    for point in points:
        fx, fy = to_axes.transform((point.locality, point.generality))
        for group, where in zip(groups, spots, strict=True):
            if any(abs(fx - gx) < NEAR and abs(fy - gy) < NEAR for gx, gy in where):
                group.append(point)
                where.append((fx, fy))
                break
        else:
            groups.append([point])
            spots.append([(fx, fy)])
    return groups


# Candidate label offsets in points from the labelled spot: near ones first, then farther
# ones that get a leader line back to the point.
LABEL_OFFSETS = (
    (6, 4), (6, -11), (-6, 4), (-6, -11), (0, 9), (0, -16),
    (18, 14), (18, -22), (-18, 14), (-18, -22), (30, 0), (-30, 0), (0, 26), (0, -32),
)  # fmt: skip
LEADER_FROM = 15  # offsets this far (points) get a leader line


def _overlap(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return float(max(0.0, w) * max(0.0, h))


def _label(ax: Any, text: str, at: tuple[float, float], offset: tuple[int, int]) -> Any:
    dx, dy = offset
    far = abs(dx) >= LEADER_FROM or abs(dy) >= LEADER_FROM
    note = ax.annotate(
        text,
        at,
        xytext=offset,
        textcoords="offset points",
        ha="left" if dx > 0 else "right" if dx < 0 else "center",
        va="bottom" if dy >= 0 else "top",
        fontsize=8,
        fontweight="bold",
        arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.4", "shrinkB": 4} if far else None,
    )
    note.set_in_layout(False)
    return note


def _place_labels(fig: Any, ax: Any, labels: Sequence[tuple[str, tuple[float, float]]]) -> None:
    """Put each text near its spot where it overlaps no placed label, no point and stays
    inside the axes; when no candidate is clear, the least-covered one is used."""
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    radius = 5 * fig.dpi / 72  # the markers' half-size in pixels, plus a little
    blocked = []
    for collection in ax.collections:
        for x, y in ax.transData.transform(collection.get_offsets()):
            blocked.append(_box(x - radius, y - radius, x + radius, y + radius))
    for text, at in labels:
        best, best_cost = None, float("inf")
        for offset in LABEL_OFFSETS:
            note = _label(ax, text, at, offset)
            box = note.get_window_extent(renderer)
            outside = box.width * box.height - _overlap(box, frame)
            cost = outside + sum(_overlap(box, other) for other in blocked)
            if cost < best_cost:
                if best is not None:
                    best[0].remove()
                best, best_cost = (note, box), cost
            else:
                note.remove()
            if cost == 0:
                break
        assert best is not None
        blocked.append(best[1])


def _box(x0: float, y0: float, x1: float, y1: float) -> Any:
    from matplotlib.transforms import Bbox

    return Bbox([[x0, y0], [x1, y1]])


def _dot(ax: Any, point: ScatterPoint, size: float = 40) -> None:
    ax.scatter(
        [point.locality],
        [point.generality],
        s=size,
        color=_colour(point.method),
        marker=_marker(point.dataset),
        edgecolors="white",
        linewidths=0.6,
        zorder=3,
    )


def _scatter(ax: Any, points: Sequence[ScatterPoint]) -> list[list[ScatterPoint]]:
    """Draw the points (limits must be set) and return their label groups. Points of one
    group are drawn largest first, so that points on the same spot show as rings."""
    groups = _groups(ax, points)
    for group in groups:
        for rank, point in enumerate(group):
            _dot(ax, point, 40 * (1 + 1.3 * (len(group) - 1 - rank)))
    return groups


def _zoom_limits(values: Sequence[float]) -> tuple[float, float]:
    """The data range with a margin, at least 2 points wide."""
    low, high = min(values), max(values)
    pad = max(0.4, 0.12 * (high - low), (2 - (high - low)) / 2)
    return low - pad, high + pad


def _number_labels(
    groups: Sequence[Sequence[ScatterPoint]],
) -> list[tuple[str, tuple[float, float]]]:
    """One label per group: its numbers, at the group's centre."""
    labels = []
    for group in groups:
        xs, ys = [p.locality for p in group], [p.generality for p in group]
        text = ", ".join(str(p.number) for p in group)
        labels.append((text, (sum(xs) / len(xs), sum(ys) / len(ys))))
    return labels


def _key(ax: Any, points: Sequence[ScatterPoint]) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            linestyle="",
            marker=_marker(p.dataset),
            color=_colour(p.method),
            markersize=6,
        )
        for p in points
    ]
    names = [f"{p.number}  {p.name}" for p in points]
    ax.axis("off")
    ax.legend(handles, names, loc="center", ncol=3, fontsize=8, frameon=False)


def locality_generality_figure(results: Sequence[Result]) -> Any:
    """The scatter as a matplotlib figure: every run at (locality, generality), numbered,
    with a key; when at least two runs reach ``ZOOM_FROM`` on both axes, a second panel
    enlarges that corner (its range stated on its axes) and the first marks it."""
    plt = _figure()
    points = scatter_points(results)
    corner = [p for p in points if p.locality >= ZOOM_FROM and p.generality >= ZOOM_FROM]
    zoom = len(corner) >= 2
    key_rows = -(-len(points) // 3)
    fig, axes = plt.subplot_mosaic(
        [["all", "zoom"], ["key", "key"]] if zoom else [["all"], ["key"]],
        figsize=(11.5 if zoom else 6.4, 4.6 + 0.2 * key_rows),
        height_ratios=[4.4, 0.1 + 0.2 * key_rows],
        width_ratios=[1.2, 1] if zoom else None,
        dpi=DPI,
    )
    labels = _main_panel(axes["all"], points, corner if zoom else [])
    zoom_labels = _zoom_panel(axes["zoom"], corner) if zoom else []
    _key(axes["key"], points)
    fig.tight_layout()  # before placing labels: placement measures the final layout
    _place_labels(fig, axes["all"], labels)
    if zoom:
        _place_labels(fig, axes["zoom"], zoom_labels)
    return fig


def _main_panel(
    ax: Any, points: Sequence[ScatterPoint], corner: Sequence[ScatterPoint]
) -> list[tuple[str, tuple[float, float]]]:
    """Every point on 0-100 axes; the ``corner`` points (enlarged elsewhere) are framed
    and labelled "zoom" instead of by number. Returns the labels to place."""
    ax.set_xlim(-5, 105)
    ax.set_ylim(-5, 105)
    groups = _scatter(ax, [p for p in points if p not in corner])
    for point in corner:
        _dot(ax, point)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("locality (% identical to the unedited answer)")
    ax.set_ylabel("generality (% of paraphrases)")
    ax.set_title("Locality vs generality: every run (top right is best)")
    labels = _number_labels(groups)
    if corner:
        xlim, ylim = _corner_limits(corner)
        ax.add_patch(_frame(xlim, ylim))
        labels.append(("zoom →", (xlim[0], (ylim[0] + ylim[1]) / 2)))
    return labels


def _corner_limits(
    corner: Sequence[ScatterPoint],
) -> tuple[tuple[float, float], tuple[float, float]]:
    return (
        _zoom_limits([p.locality for p in corner]),
        _zoom_limits([p.generality for p in corner]),
    )


def _zoom_panel(ax: Any, corner: Sequence[ScatterPoint]) -> list[tuple[str, tuple[float, float]]]:
    """The corner points on axes zoomed to their range; returns the labels to place."""
    xlim, ylim = _corner_limits(corner)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    groups = _scatter(ax, corner)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel(f"locality (%), zoomed: {xlim[0]:.1f} to {xlim[1]:.1f}")
    ax.set_ylabel(f"generality (%), zoomed: {ylim[0]:.1f} to {ylim[1]:.1f}")
    ax.set_title(f"Zoom: runs at ≥ {ZOOM_FROM:.0f}% on both axes")
    return _number_labels(groups)


def _frame(xlim: tuple[float, float], ylim: tuple[float, float]) -> Any:
    from matplotlib.patches import Rectangle

    width, height = xlim[1] - xlim[0], ylim[1] - ylim[0]
    return Rectangle(
        (xlim[0], ylim[0]), width, height, fill=False, linestyle="--", color="0.3", lw=0.8
    )


def locality_generality_plot(results: Sequence[Result], path: Path) -> Path:
    """One point per (dataset, method): generality against locality."""
    plt = _figure()
    return _save(plt, locality_generality_figure(results), path)


def latency_plot(latencies: dict[str, list[float]], path: Path) -> Path:
    """Per-probe answer latency of each run (box plot, log scale)."""
    from matplotlib.ticker import LogLocator, ScalarFormatter

    plt = _figure()
    labels = [k for k, v in latencies.items() if v]
    fig, ax = plt.subplots(figsize=(7, 0.5 * max(len(labels), 4) + 1))
    ax.boxplot([latencies[k] for k in labels], vert=False, whis=(5, 95), showfliers=False)
    names = [k.removeprefix("results/").removesuffix(".json") for k in labels]
    ax.set_yticks(range(1, len(labels) + 1), names, fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlabel("ms per probe (box: p25-p75, whiskers: p5-p95)")
    ax.set_title("Answer latency")
    return _save(plt, fig, path)
