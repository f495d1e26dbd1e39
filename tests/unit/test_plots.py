"""The report's figures read at a glance: no label hides another, crowded corners are
enlarged, and series that share x values are drawn side by side."""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from kme_rag.report.plots import (
    ZOOM_FROM,
    dodge,
    locality_generality_figure,
    locality_generality_plot,
    scatter_points,
)
from kme_rag.report.results import Result


def run(dataset: str, method: str, locality: float, generality: float, **extra: Any) -> Result:
    n = int(extra.pop("n", 500))
    counts = {
        "cases": n,
        "locality_same": round(locality * n / 100),
        "generality": round(generality * n / 100),
    }
    data = {"dataset": dataset, "method": method, "counts": counts, "n": n, **extra}
    return Result("single", data, f"results/x/{dataset}-{method}.json")


# The committed results of 2026-12-02 (rounded): four memory runs crowd the top right,
# kme+weights and MEMIT share a spot twice, the two unedited runs nearly share one.
COMMITTED = [
    run("counterfact", "ike", 0.0, 57.8),
    run("counterfact", "kme", 98.6, 94.6),
    run("counterfact", "kme", 98.4, 97.8, scope="classifier"),
    run("counterfact", "kme+weights", 0.0, 50.7, n=75),
    run("counterfact", "none", 100.0, 0.4),
    run("zsre", "ike", 0.0, 70.0, n=100),
    run("zsre", "kme", 100.0, 98.2, n=498, scope="classifier"),
    run("zsre", "kme", 100.0, 94.8, n=498),
    run("zsre", "kme+weights", 7.5, 55.0, n=40),
    run("zsre", "none", 100.0, 0.6, n=498),
    run("counterfact", "memit", 0.0, 19.0, n=100),
    run("counterfact", "memit", 0.0, 50.7, n=75),
    run("counterfact", "rome", 52.0, 62.7, n=75, edits_mode="one"),
    run("zsre", "memit", 7.5, 55.0, n=40),
    run("zsre", "rome", 60.0, 75.0, n=40, edits_mode="one"),
]


def _labels(fig: Any, ax: Any) -> list[tuple[str, Any]]:
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts]


def _numbers(texts: list[str]) -> list[int]:
    return [int(part) for text in texts for part in text.split(", ") if part.isdigit()]


@pytest.fixture(scope="module")
def figure() -> Any:
    import matplotlib.pyplot as plt

    fig = locality_generality_figure(COMMITTED)
    yield fig
    plt.close(fig)


def test_points_are_numbered_by_dataset_then_name_with_the_tables_names() -> None:
    points = scatter_points([*COMMITTED, Result("single", {"dataset": "zsre"}, "p")])
    assert [p.number for p in points] == list(range(1, len(COMMITTED) + 1))
    assert [p.dataset for p in points] == sorted(p.dataset for p in points)
    names = [p.name for p in points]
    assert "counterfact: kme (classifier scope)" in names
    assert "counterfact: kme (similarity scope)" in names
    assert "zsre: rome, one edit at a time" in names


def test_no_label_overlaps_another_or_leaves_its_panel(figure: Any) -> None:
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        if not ax.axison:
            continue  # the key
        frame = ax.get_window_extent(renderer)
        labels = _labels(figure, ax)
        assert labels
        for text, box in labels:
            assert frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1), text
        for (a, box_a), (b, box_b) in combinations(labels, 2):
            assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"


def test_the_crowded_corner_is_enlarged_and_every_run_is_labelled_once(figure: Any) -> None:
    main, zoom = (ax for ax in figure.axes if ax.axison)
    points = scatter_points(COMMITTED)
    corner = {p.number for p in points if min(p.locality, p.generality) >= ZOOM_FROM}
    assert corner == {2, 3, 10, 11}
    main_numbers = _numbers([text for text, _ in _labels(figure, main)])
    zoom_numbers = _numbers([text for text, _ in _labels(figure, zoom)])
    assert sorted(main_numbers) == sorted(p.number for p in points if p.number not in corner)
    assert sorted(zoom_numbers) == sorted(corner)
    assert "zoom →" in [text for text, _ in _labels(figure, main)]
    (x0, x1), (y0, y1) = zoom.get_xlim(), zoom.get_ylim()
    for p in points:
        if p.number in corner:
            assert x0 < p.locality < x1 and y0 < p.generality < y1
    assert x1 - x0 < 10 and y1 - y0 < 10  # really enlarged
    assert "98.0" in zoom.get_xlabel()  # the zoomed range is stated on the axis


def test_runs_on_the_same_spot_share_one_label(figure: Any) -> None:
    main = next(ax for ax in figure.axes if ax.axison)
    texts = [text for text, _ in _labels(figure, main)]
    assert "4, 6" in texts  # counterfact: kme+weights and memit, one batch of 150
    assert "7, 14" in texts  # the unedited runs, 0.4% and 0.6% generality


def test_the_key_names_every_run(figure: Any) -> None:
    key = next(ax for ax in figure.axes if not ax.axison)
    entries = [t.get_text() for t in key.get_legend().get_texts()]
    assert entries == [f"{p.number}  {p.name}" for p in scatter_points(COMMITTED)]


def test_without_a_crowded_corner_there_is_one_panel() -> None:
    import matplotlib.pyplot as plt

    fig = locality_generality_figure(COMMITTED[:1] + COMMITTED[4:6])
    assert sum(ax.axison for ax in fig.axes) == 1
    plt.close(fig)


def test_the_plot_is_written_as_a_png(tmp_path: Path) -> None:
    path = locality_generality_plot(COMMITTED, tmp_path / "figs" / "lg.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dodge_spreads_series_symmetrically_around_the_true_x() -> None:
    xs = [1, 10, 100]
    spread = [dodge(xs, i, 3) for i in range(3)]
    assert spread[1] == pytest.approx(xs)
    for x, (low, mid, high) in zip(xs, zip(*spread, strict=True), strict=True):
        assert low < mid < high
        assert math.log10(high / x) == pytest.approx(-math.log10(low / x))
    assert dodge(xs, 0, 1) == pytest.approx(xs)


def _curves(method: str, x_field: str) -> Result:
    points = [
        {x_field: x, "counts": {"cases": 10, "efficacy": 10, "generality": 9, "locality_same": k}}
        for x, k in ((1, 10), (10, 7), (100, 2))
    ]
    return Result("retainability", {"method": method, "points": points}, f"{method}.json")


def test_curve_plots_draw_several_methods_and_the_rome_decay(tmp_path: Path) -> None:
    from kme_rag.report.plots import retainability_plot, scalability_plot

    decay = {
        "decay": [{"edits_applied": 10, "efficacy": 1.0}, {"edits_applied": 50, "efficacy": 0.4}]
    }
    runs = [_curves("kme", "edits_applied"), _curves("rome", "edits_applied")]
    path = retainability_plot(runs, [Result("weights", decay, "d.json")], tmp_path / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = [_curves("kme", "edits_stored"), _curves("ike", "edits_stored")]
    path = scalability_plot(stored, tmp_path / "s.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
