"""The report's tables, as Markdown lines, from loaded results (pure functions).

Every proportion carries its count and a 95% Wilson interval; differences carry
Newcombe's interval (:mod:`kme_rag.report.intervals`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from kme_rag.report.intervals import newcombe_difference
from kme_rag.report.markdown import DASH, markdown_table, pct, share_cell
from kme_rag.report.results import Result

__all__ = [
    "VIEWS",
    "conversations_table",
    "freetext_table",
    "latency_cell",
    "method_label",
    "multihop_table",
    "natural_table",
    "probability_table",
    "retainability_table",
    "rome_decay_table",
    "scalability_deltas",
    "scalability_table",
    "scale_rows",
    "scale_table",
    "single_hop_table",
]


def method_label(data: dict[str, Any]) -> str:
    """The method as the report names it, with the variant that distinguishes runs."""
    method = str(data.get("method"))
    stated = {"sentence": ", edits as sentences", "passage": ", edits as AKEW passages"}
    text = stated.get(str(data.get("edits_as")), "")
    if method == "kme" and "edits_stored" not in data:  # runs before the classifier: similarity
        generated = ", nothing prefilled" if data.get("answer") == "generate" else ""
        return f"kme ({data.get('scope') or 'similarity'} scope{generated}{text})"
    if text:
        return f"{method} ({text.removeprefix(', ')})"
    if method == "rome":
        return "rome, one edit at a time" if data.get("edits_mode") == "one" else "rome, sequential"
    if method == "memit":
        return f"memit, one batch of {data.get('n')}"
    return method


def _count(data: dict[str, Any], key: str) -> int | None:
    value = data.get("counts", {}).get(key)
    return None if value is None else int(value)


def latency_cell(data: dict[str, Any]) -> str:
    """``p50 / p95`` ms of a result's answers; for answers decoded several prompts per
    call (the weights runs), per prompt, with the call's size."""
    lat = data.get("latency_ms") or {}
    if "p50" not in lat:
        return DASH
    rows = lat.get("batch_rows")
    return f"{lat['p50']:.0f} / {lat['p95']:.0f}" + (f" ({rows} per call)" if rows else "")


def _single_row(result: Result) -> list[str]:
    d = result.data
    n = _count(d, "cases")
    unrelated_n = _count(d, "locality_unrelated_cases")
    return [
        method_label(d),
        str(n if n is not None else d.get("n")),
        share_cell(_count(d, "efficacy"), n),
        share_cell(_count(d, "generality"), n),
        share_cell(_count(d, "generality_casual"), _count(d, "casual")),
        share_cell(_count(d, "generality_two_turn"), _count(d, "two_turn")),
        share_cell(_count(d, "same_subject_kept"), _count(d, "same_subject")),
        share_cell(_count(d, "locality_same"), n),
        share_cell(_count(d, "locality_leak"), n),
        share_cell(_count(d, "stale"), _count(d, "stale_asked")),
        share_cell(_count(d, "locality_unrelated_same"), unrelated_n),
        latency_cell(d),
        str(d.get("prompt_tokens_per_question") or DASH),
        result.source,
    ]


SINGLE_HEADER = (
    "method",
    "n",
    "efficacy",
    "generality",
    "generality, casual",
    "generality, follow-up turn",
    "same-subject locality",
    "neighbour locality",
    "leak",
    "stale",
    "unrelated (diagnostic)",
    "p50 / p95 ms",
    "tokens / question",
    "result",
)


def single_hop_table(results: Sequence[Result], dataset: str) -> list[str]:
    """Efficacy, generality, locality (agreement with the unedited model's own answer),
    latency and tokens of every method on ``dataset``; generation metrics only."""
    rows = [
        _single_row(r)
        for r in results
        if r.data.get("dataset") == dataset and (r.kind == "single" or "counts" in r.data)
    ]
    return markdown_table(SINGLE_HEADER, rows, numeric_from=1) if rows else []


NATURAL_ROWS = (
    ("efficacy", "efficacy"),
    ("generality_formal", "generality, formal"),
    ("generality_casual", "generality, casual"),
    ("generality_chat", "generality, chat message"),
    ("locality_same_subject", "same-subject locality"),
    ("locality_neighbour", "neighbour locality"),
    ("leak_same_subject", "same-subject leak"),
    ("stale", "stale (old object in an in-scope answer)"),
    ("generated_efficacy", "generated efficacy (nothing prefilled)"),
    ("generated_generality_formal", "generated generality, formal"),
    ("generated_generality_casual", "generated generality, casual"),
    ("generated_generality_chat", "generated generality, chat"),
    ("generated_stale", "generated stale"),
)


def natural_table(results: Sequence[Result]) -> list[str]:
    """The held-out natural set: one column per run (method), one row per figure; the
    routed figures first, then those of answers generated with nothing prefilled."""
    runs = sorted(results, key=lambda r: str(r.data.get("method")))
    if not runs:
        return []
    header = ("figure", *(f"{r.data.get('method')} (`{r.path}`)" for r in runs))
    rows = []
    for key, label in NATURAL_ROWS:
        cells = []
        for r in runs:
            figure = r.data.get("figures", {}).get(key)
            cells.append(share_cell(figure["k"], figure["n"]) if figure else DASH)
        if any(c != DASH for c in cells):
            rows.append([label, *cells])
    return markdown_table(header, rows, numeric_from=1)


CONVERSATION_ROWS = (
    ("hop1_known", "two-hop, edit on hop 1 (other hop known)"),
    ("hop1_known_walker_alone_diagnostic", "  the walker alone (diagnostic)"),
    ("hop2_known", "two-hop, edit on hop 2 (other hop known)"),
    ("hop2_known_walker_alone_diagnostic", "  the walker alone (diagnostic)"),
    ("hop1_all", "two-hop, hop 1, every item"),
    ("hop2_all", "two-hop, hop 2, every item"),
    ("followup", "follow-up turn asking the edited relation"),
    ("followup_resolved", "  resolved by the editor (diagnostic)"),
    ("followup_other_kept", "follow-up asking another relation: answer unchanged"),
    ("single_kept", "relative-clause question, one other relation: answer unchanged"),
    ("single_walked_by_mistake", "  walked by mistake"),
)


def conversations_table(results: Sequence[Result]) -> list[str]:
    """The held-out two-hop and follow-up set, one row per figure (the newest run)."""
    if not results:
        return []
    run = results[-1]
    figures = run.data.get("figures", {})
    rows = [
        [label, share_cell(figures[key]["k"], figures[key]["n"])]
        for key, label in CONVERSATION_ROWS
        if key in figures
    ]
    lat = run.data.get("latency_ms", {})
    if lat.get("passthrough_ratio_p50") is not None:
        rows.append(
            [
                "passed-through questions: p50 ms, editor / unedited",
                f"{lat['passthrough_p50']:.0f} / {lat['passthrough_unedited_p50']:.0f} "
                f"({lat['passthrough_ratio_p50']:.2f}x, n={lat['passthrough_n']})",
            ]
        )
    return markdown_table(("figure", f"kme (`{run.path}`)"), rows, numeric_from=1)


FREETEXT_ROWS = (
    ("answered_with_new_fact", "questions answered with the new fact"),
    ("answered_when_fact_extracted", "  where the reader stored a fact with that object"),
    ("answered_when_not_extracted", "  where it did not (statement route or none)"),
    ("must_not_change_kept", "must-not-change questions: answer unchanged"),
    ("kept_same_subject", "  same subject, another relation"),
    ("kept_neighbour", "  neighbour (another subject)"),
    ("kept_unrelated", "  unrelated"),
)


def freetext_table(results: Sequence[Result]) -> list[str]:
    """The held-out free-text set: one column per run (the reader and the statement gate
    of each; the default first), one row per figure, then the add time."""
    if not results:
        return []
    runs = sorted(
        results,
        key=lambda r: (r.data.get("extractor") != "classifier", not r.data.get("statement_gate")),
    )
    rows = []
    for key, label in FREETEXT_ROWS:
        cells = []
        for run in runs:
            f = run.data.get("figures", {}).get(key)
            cells.append(share_cell(f["k"], f["n"]) if f else DASH)
        rows.append([label, *cells])
    rows.append(
        [
            "add time per statement, p50 / p95 ms",
            *(
                f"{a['p50']:.0f} / {a['p95']:.0f}" if (a := r.data.get("add_text_ms")) else DASH
                for r in runs
            ),
        ]
    )
    header = [
        "figure",
        *(
            f"{r.data.get('extractor')} reader, "
            f"{'statements gated' if r.data.get('statement_gate') else 'no gate (ablation)'}"
            + (f", reader of {c}" if (c := r.data.get("reader_commit")) else "")
            + f" (`{r.path}`)"
            for r in runs
        ),
    ]
    return markdown_table(tuple(header), rows, numeric_from=1)


def probability_table(results: Sequence[Result]) -> list[str]:
    """ROME's probability tests (P(new) > P(true)), edited and unedited, for weight runs."""
    rows = []
    for r in results:
        d, n = r.data, int(r.data.get("n", 0))
        p, u = d["probability"], d["unedited_probability"]
        rows.append(
            [
                f"{d.get('dataset')}: {method_label(d)}",
                str(n),
                *(
                    share_cell(round(p[k] * n), n)
                    for k in ("efficacy", "paraphrase", "neighbourhood")
                ),
                *(pct(u[k]) for k in ("efficacy", "paraphrase", "neighbourhood")),
                r.source,
            ]
        )
    header = (
        "run",
        "n",
        "efficacy",
        "paraphrase",
        "neighbourhood",
        "unedited efficacy",
        "unedited paraphrase",
        "unedited neighbourhood",
        "result",
    )
    return markdown_table(header, rows) if rows else []


def multihop_table(results: Sequence[Result]) -> list[str]:
    """Portability on MQuAKE: multi-hop accuracy per case (MQuAKE's rule: any of the
    three questions right) and per question, with the prior baseline beside them."""
    rows = []
    for r in results:
        d, m = r.data, r.data["metrics"]
        n = int(d["n"])
        label = str(d["method"]) + (
            " (known facts, labelled mode)" if "known" in str(d.get("mode")) else ""
        )
        label += ", one case's edits at a time" if d.get("edits_mode") == "one" else ""
        label += ", on the MEMIT-edited weights" if d["method"] == "kme+weights" else ""
        label += ", edits as AKEW passages" if d.get("edits_as") == "passage" else ""
        label += f", reader of {c}" if (c := d.get("reader_commit")) else ""
        if d.get("edits_as") != "passage" and "single_hop_accuracy" in m:
            label += ", structured edits (the passages' comparison)"
        if d["method"] == "kme" and "path" not in d:  # before the editor path was measured
            label += ", the walker alone (diagnostic)"
        lat = d.get("latency_ms_per_question", {})
        rows.append(
            [
                str(d["dataset"]).removeprefix("mquake:"),
                label,
                str(n),
                share_cell(round(m["multihop_accuracy"] * n), n),
                share_cell(round(m["question_accuracy"] * 3 * n), 3 * n),
                pct(m.get("prior_baseline")),
                f"{pct(m.get('known_hops_accuracy'))} ({m.get('known_hops_cases', DASH)})",
                _edited_hop_cell(m.get("accuracy_by_edited_hop")),
                share_cell(_single_hops_right(m), m.get("single_hops")),
                f"{lat.get('p50', 0) / 1000:.2f} / {lat.get('p95', 0) / 1000:.2f}" if lat else DASH,
                r.source,
            ]
        )
    header = (
        "file",
        "method",
        "cases",
        "multi-hop (per case)",
        "per question (3/case)",
        "prior baseline",
        "known-hops subset (cases)",
        "edit on hop 1 / later hops only (cases)",
        "edited hops asked alone",
        "p50 / p95 s / question",
        "result",
    )
    return markdown_table(header, rows, numeric_from=2) if rows else []


def _single_hops_right(m: dict[str, Any]) -> int | None:
    n = m.get("single_hops")
    return None if n is None else round(m["single_hop_accuracy"] * n)


def _edited_hop_cell(split: dict[str, dict[str, Any]] | None) -> str:
    """``first (n) / later_only (n)`` of :func:`~kme_rag.bench.mquake_metrics.by_edited_hop`."""
    if not split:
        return DASH
    return " / ".join(
        f"{pct(g['accuracy'])} ({g['cases']})" if (g := split.get(k)) else DASH
        for k in ("first", "later_only")
    )


def _point_cells(p: dict[str, Any]) -> list[str]:
    n = _count(p, "cases")
    return [
        share_cell(_count(p, "efficacy"), n),
        share_cell(_count(p, "generality"), n),
        share_cell(_count(p, "locality_same"), n),
        share_cell(_count(p, "locality_unrelated_same"), _count(p, "locality_unrelated_cases")),
    ]


def _active_cells(p: dict[str, Any]) -> list[str]:
    counts = p.get("active", {}).get("counts")
    if not counts:
        return [DASH, DASH]
    n = counts["cases"]
    return [share_cell(counts["efficacy"], n), share_cell(counts["generality"], n)]


def scalability_table(result: Result) -> list[str]:
    rows = []
    for p in result.data["points"]:
        rows.append(
            [
                f"{p['edits_stored']:,}",
                str(p["probed"]),
                *_point_cells(p),
                str(len(p.get("superseded", []))),
                *_active_cells(p),
                latency_cell(p),
                f"{p['import_seconds']:.1f}",
            ]
        )
    header = (
        "edits stored",
        "probed",
        "efficacy",
        "generality",
        "locality",
        "locality, unrelated",
        "superseded",
        "efficacy, active",
        "generality, active",
        "p50 / p95 ms",
        "import s (this step)",
    )
    return markdown_table(header, rows)


def _points_by(result: Result, field: str) -> dict[int, dict[str, Any]]:
    return {int(p[field]): p for p in result.data["points"]}


# (metric, successes, trials) in the two views of a scalability point
VIEWS = {
    "as counted": (
        ("efficacy", "efficacy", "cases"),
        ("generality", "generality", "cases"),
        ("locality", "locality_same", "cases"),
    ),
    "active edits, unrelated locality": (
        ("efficacy", "efficacy", "cases"),
        ("generality", "generality", "cases"),
        ("locality", "locality_unrelated_same", "locality_unrelated_cases"),
    ),
}


def _view_counts(point: dict[str, Any], view: str) -> dict[str, Any]:
    if view == "as counted":
        return dict(point["counts"])
    active = dict(point.get("active", point)["counts"])
    # locality, unrelated: over every probed case (a superseded edit does not change it)
    for key in ("locality_unrelated_same", "locality_unrelated_cases"):
        active[key] = point["counts"][key]
    return active


def scalability_deltas(
    result: Result, base: int, top: int, view: str = "as counted"
) -> list[dict[str, Any]]:
    """Eq. 13/14 read as differences: each metric with ``top`` edits stored minus the
    same with ``base`` stored, with Newcombe's 95% interval; [] when either is missing.
    ``view``: "as counted" (every probed case), or "active edits, unrelated locality"
    (efficacy and generality over cases whose edit no later edit superseded, locality
    over neighbourhood prompts naming no other stored subject)."""
    points = _points_by(result, "edits_stored")
    if base not in points or top not in points:
        return []
    a, b = _view_counts(points[base], view), _view_counts(points[top], view)
    out = []
    for name, hit, trials in VIEWS[view]:
        diff = newcombe_difference(int(a[hit]), int(a[trials]), int(b[hit]), int(b[trials]))
        out.append({"metric": name, "base": base, "top": top, "view": view, "difference": diff})
    return out


def retainability_table(result: Result) -> list[str]:
    rows = []
    for p in result.data["points"]:
        adds = p.get("add_seconds") or []
        add = f"{statistics.median(adds) * 1000:.0f}" if adds else DASH
        rows.append([f"{p['edits_applied']:,}", str(p["probed"]), *_point_cells(p), add])
    header = (
        "edits applied",
        "probed (oldest)",
        "efficacy",
        "generality",
        "locality",
        "locality, unrelated",
        "add p50 ms (since last)",
    )
    return markdown_table(header, rows)


def rome_decay_table(result: Result) -> list[str]:
    """Sequential ROME's checkpoints: probability scores of the first edits."""
    rows = [
        [
            f"{c['edits_applied']:,}",
            str(c["probed"]),
            *(
                share_cell(round(c[k] * c["probed"]), c["probed"])
                for k in ("efficacy", "paraphrase", "neighbourhood")
            ),
        ]
        for c in result.data["decay"]
    ]
    header = (
        "edits applied",
        "probed (first)",
        "efficacy (P)",
        "paraphrase (P)",
        "neighbourhood (P)",
    )
    return markdown_table(header, rows)


def scale_rows(sizes: Sequence[dict[str, Any]]) -> list[list[str]]:
    """A ``kme bench scale`` result's figures, one row each, a column per store size."""

    def each(cell: Any) -> list[str]:
        return [cell(s) for s in sizes]

    def opened(key: str) -> list[str]:
        return each(lambda s: str(s["open"].get(key, DASH)))

    def ms(key: str) -> list[str]:
        return each(lambda s: f"{s[key]['p50']} / {s[key]['p95']}")

    def share(group: str, key: str) -> list[str]:
        return each(lambda s: pct(s[group].get(key)))

    return [
        ["import, edits/s", *each(lambda s: str(s["import"]["edits_per_s"]))],
        [
            "the embedder alone, batched, statements/s",
            *each(lambda s: str(s["import"]["embedder_batched_per_s"])),
        ],
        ["import / embedder", *each(lambda s: pct(s["import"]["ratio"]))],
        ["open, cold process, from the snapshot, median (s)", *opened("from_snapshot_s")],
        [
            "first open after the import (catches up what came after the last save) (s)",
            *opened("first_from_snapshot_s"),
        ],
        ["open, cold process, graph rebuilt from every record (s)", *opened("rebuilt_s")],
        ["peak RSS of that process: store, scope, embedder, no model (MB)", *opened("peak_rss_mb")],
        ["retrieval + scope p50 / p95 (ms)", *ms("decision_ms")],
        ["the whole plan p50 / p95 (ms)", *ms("plan_ms")],
        ["same-subject locality (answers)", *share("locality", "same_subject")],
        ["neighbour locality (answers)", *share("locality", "neighbour")],
        ["*routed*: the edit's prompt in scope with its edit", *share("routed", "prompt")],
        ["*routed*: paraphrase in scope", *share("routed", "paraphrase")],
        ["*routed*: casual paraphrase in scope", *share("routed", "casual")],
        ["*routed*: same-subject question passed through", *share("routed", "same_subject")],
        ["*routed*: neighbour passed through", *share("routed", "neighbour")],
    ]


def scale_table(results: Sequence[Result]) -> list[str]:
    """Each store kind's newest ``kme bench scale`` run: figures by store size."""
    lines: list[str] = []
    for run in results:
        sizes = run.data["sizes"]
        header = (f"{run.data['store']} store (`{run.path}`)", *(f"{s['size']:,}" for s in sizes))
        lines += [*markdown_table(header, scale_rows(sizes)), ""]
    return lines
