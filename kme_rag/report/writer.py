"""REPORT.md from loaded results: a pure function of the results and the figure paths.

The report is regenerated, never hand-edited: every number in it comes from a result
JSON it names. Sections: how to regenerate, the definitions, the side-by-side tables
(single-hop, cost, portability), scalability, retainability, figures, the published
anchors (other models), the targets, and the wall time of ``bench all``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from kme_rag.report.anchors import ANCHORS, NOT_FOUND
from kme_rag.report.markdown import DASH, markdown_table
from kme_rag.report.measures import PerEdit, retainability_estimates, rome_retainability
from kme_rag.report.results import Result, Results
from kme_rag.report.tables import (
    VIEWS,
    conversations_table,
    freetext_table,
    latency_cell,
    method_label,
    multihop_table,
    natural_table,
    probability_table,
    retainability_table,
    rome_decay_table,
    scalability_deltas,
    scalability_table,
    scale_table,
    single_hop_table,
)

__all__ = ["render_report"]

DEFINITIONS = """\
Definitions (the survey's Section 4 metrics as this harness measures them; greedy
decoding, 16 new tokens, a hit = the answer contains the new object as whole words after
normalisation):

- **efficacy** (accuracy): the edit's own prompt is answered with the new object;
- **generality**: the same for its paraphrase;
- **generality, casual**: the paraphrase lower-cased and stripped of its final "?" or ".";
- **same-subject locality** (the headline locality): the edited subject asked two *other*
  relations (templates of other relations of the file, filled with the subject); the
  answer must be identical to the unedited model's answer to it, asked in the same run;
- **neighbour locality**: the same for the neighbourhood prompt (another subject);
  *leak*: the new object appears in that answer; *stale*: the old object appears in an
  answer to the prompt, the paraphrase or the casual paraphrase; *unrelated (diagnostic)*
  leaves out neighbourhood prompts that name the subject of another stored edit: with a
  subject gate such a prompt cannot change, so it is true by construction, not a result;
- in-scope `kme` answers start with the prefilled new object: efficacy and generality
  there measure the routing. The held-out natural set also reports answers the model
  *generated* with nothing prefilled (`answer="generate"`);
- **portability**: MQuAKE multi-hop accuracy (a case counts when any of its three
  questions is answered with the new final answer; per question beside it);
- **retainability** (Eq. 12): the mean per-edit change in accuracy as edits arrive one
  by one, `1/(N-1) · Σ (Acc(n+1) - Acc(n))`, signed so forgetting is negative; the sum
  telescopes, so it is estimated from accuracies measured at checkpoints on one fixed
  probe set (the oldest edits) as `(Acc(last) - Acc(first)) / (last - first)`;
- **scalability** (Eq. 13/14): accuracy with N edits stored, compared with fewer stored
  (reported as differences with N = 100 as the base; N = 1 and 10 probe only 1 and 10
  cases);
- **edit time**, **answer latency** (per probe, p50/p95, ms) and **tokens sent** to the
  model per question (the prompt as the backend's tokenizer counts it).

Intervals: 95% Wilson score intervals for proportions; Newcombe's hybrid score interval
(method 10) for differences of two proportions, divided by the number of edits between
the checkpoints for per-edit rates. The survey's equation text could not be retrieved
here; the formulas above are the definitions this report uses.
"""

NATURAL_NOTE = (
    "120 edits over 23 relations, written before any tuning and never trained or tuned on, "
    "though read while the scope was built (its README says how); every question asked as "
    "`kme ask` asks it (`KnowledgeEditor.from_settings`, with the multi-hop walk), the "
    "unedited answer asked in the same run."
)

CONVERSATIONS_NOTE = (
    "Written by hand before any run of the editor on it, never tuned on; each item asked "
    "with its own edit stored alone, through the editor `kme ask` and `kme chat` build; "
    "two-hop figures on the items whose unedited hop the bundled model was verified to "
    "know. Follow-up and relative-clause answers must equal the unedited model's answer "
    "to the same conversation, asked in the same run."
)

FREETEXT_NOTE = (
    "Written by a helper who had not read the extractors, before either ran on it; never "
    "tuned on. Each statement stored alone with `kme edit add --text`'s reader (undone "
    "after), its questions asked through the editor `kme ask` builds; *answered* = the "
    "answer names the new object or an alias; must-not-change answers must equal the "
    "unedited model's in the same run. CounterFact stored as sentences and MQuAKE as AKEW's "
    "passages are rows of their own tables above and below."
)

SCALABILITY_NOTE = (
    "*superseded*: probed cases whose (subject, relation) a later edit among the N stored "
    "edits again (CounterFact repeats some, e.g. twin cities): the later object is then "
    "the right answer, so *active* leaves them out. *locality, unrelated* leaves out "
    "neighbourhood prompts that name another stored edit's subject, which grow with N."
)

KME_ROUTE = (
    "`kme` is the project's default route: retrieval, the trained scope classifier and the "
    "IKE fact block with the new object prefilled; on MQuAKE it is the multi-hop graph walk "
    "over the edits. The single-hop runs (`kme bench counterfact|zsre`, `build_editor`) "
    "and the curves build it without the walk: CounterFact probes are clozes, which never "
    "reach it; zsRE questions could (a question naming an edited subject that no edit is "
    "in scope of), so the zsRE figures are the single-hop route alone. `ike` is IKE "
    "without gating (4 nearest demonstrations). `kme+weights`: every edit stored in the "
    "memory *and* written into the weights in one MEMIT batch; single-hop probes are "
    "answered by the consolidated weights (route `weights`), locality against the "
    "unedited weights' answers; the memory remains the source of truth for the multi-hop "
    "walk: on MQuAKE, `kme+weights` is the walk reading edited hops from the memory and "
    "asking the MEMIT-edited weights (torch) every other hop, where `kme` asks the "
    "unedited model (llama.cpp)."
)


def _section(title: str, body: Sequence[str]) -> list[str]:
    return [f"## {title}", "", *body, ""] if body else []


def _commands(results: Sequence[Result]) -> list[str]:
    out = []
    for r in results:
        d = r.data
        machine = d.get("machine") or {}
        cores = machine.get("cores") if isinstance(machine, dict) else None
        rescored = d.get("rescored")
        out.append(
            f"- `{r.path}`: `{d.get('command', '?')}` ({d.get('date', '?')}"
            + (f", {cores} cores)" if cores else ")")
            + (
                f"; rescored {rescored['date'][:10]} with today's matcher "
                f"(`{rescored['command']}`): {rescored['moved']}"
                if rescored
                else ""
            )
        )
    return out


def _per_edit_lines(label: str, estimates: Sequence[PerEdit]) -> list[str]:
    return [
        f"- {label}, {e.metric}: {e.per_edit.value:+.5f} per edit (95% CI "
        f"{e.per_edit.low:+.5f} to {e.per_edit.high:+.5f}), checkpoints {e.first:,} → "
        f"{e.last:,}"
        for e in estimates
    ]


def _delta_line(d: dict[str, Any]) -> str:
    diff = d["difference"]
    return (
        f"- {d['metric']} ({d['view']}): {d['top']:,} stored minus {d['base']:,} stored = "
        f"{diff.value * 100:+.1f} points (95% CI {diff.low * 100:+.1f} to "
        f"{diff.high * 100:+.1f})"
    )


def _scalability(results: Results) -> list[str]:
    body: list[str] = []
    for r in results.of("scalability"):
        body += [f"`{r.data['method']}` route, {r.data['definition']} (`{r.path}`):", ""]
        body += [*scalability_table(r), ""]
        body += [SCALABILITY_NOTE, ""]
        top = max(int(p["edits_stored"]) for p in r.data["points"])
        for view in VIEWS:
            body += [_delta_line(d) for d in scalability_deltas(r, 100, top, view)]
        body.append("")
    return body


def _retainability(results: Results) -> list[str]:
    body: list[str] = []
    for r in results.of("retainability"):
        method = r.data["method"]
        how = "memory route" if method == "kme" else "each edit written into the weights"
        body += [f"`{method}` ({how}), {r.data['definition']} (`{r.path}`):", ""]
        body += [*retainability_table(r), ""]
        body += [*_per_edit_lines(method, retainability_estimates(r)), ""]
    for r in _rome_sequential(results):
        body += [
            f"Sequential ROME (`{r.path}`): probability tests on the first edits, "
            "re-scored every few edits (ROME's own score, not generation):",
            "",
        ]
        body += [*rome_decay_table(r), ""]
        body += [*_per_edit_lines("rome (probability)", rome_retainability(r)), ""]
    measured = {r.data["method"] for r in results.of("retainability")}
    missing = [m for m in ("kme", "rome", "memit") if m not in measured]
    if missing:
        body.append(
            f"Not measured in these results: {', '.join(missing)} (`bench all` plans "
            + ", ".join(f"`retainability-{m}`" for m in missing)
            + ")."
        )
    return body


def _rome_sequential(results: Results) -> list[Result]:
    return [r for r in results.of("weights") if r.data.get("decay")]


def _anchors() -> list[str]:
    order = ("reliability", "edit success", "generalization", "locality", "portability")
    keys = [k for k in order if any(k in a.values for a in ANCHORS)]
    rows = [
        [
            a.method,
            a.model,
            a.dataset,
            *(f"{a.values[k]:.2f}" if k in a.values else DASH for k in keys),
        ]
        for a in ANCHORS
    ]
    sources = sorted({a.source for a in ANCHORS})
    lines = [
        "**Not this project's runs**: other models, other splits, other matching "
        "rules. Read them as where the methods stand on 7B models, not as a "
        "comparison row.",
        "",
    ]
    lines += markdown_table(("method", "model", "dataset", *keys), rows, numeric_from=3)
    lines += ["", "Sources:", "", *(f"- {s}" for s in sources), ""]
    lines += [
        "Looked for and **not found** in any source readable here (no number quoted):",
        "",
        *(f"- {what} ({where})" for what, where in NOT_FOUND),
    ]
    return lines


def _within(deltas: list[dict[str, Any]], points: float) -> list[str]:
    out = []
    for d in deltas:
        diff = d["difference"].value * 100
        verdict = "met" if abs(diff) <= points else f"missed by {abs(diff) - points:.1f} points"
        out.append(f"{d['metric']} {diff:+.1f} points: {verdict}")
    return out


def _reused(data: dict[str, Any]) -> str:
    """How many of a run's δs came from the target cache, and what they first cost."""
    cache = data.get("target_cache") or {}
    if not cache.get("reused"):
        return ""
    return (
        f"; {cache['reused']} of its targets δ reused from an earlier run on the same weights"
        f" (their optimisation took {cache['reused_seconds']:.0f} s there)"
    )


def _targets(results: Results) -> list[str]:
    lines = []
    scal = results.of("scalability")
    for view in VIEWS:
        deltas = scalability_deltas(scal[0], 100, 10000, view) if scal else []
        lines.append(
            f"- kme, 10,000 CounterFact edits stored vs 100, each within 2 points ({view}): "
            + ("; ".join(_within(deltas, 2.0)) if deltas else "not measured")
        )
    by_method = {r.data["method"]: r for r in results.of("retainability")}
    est = retainability_estimates(by_method["kme"]) if "kme" in by_method else []
    eff = next((e for e in est if e.metric == "efficacy"), None)
    if eff is None:
        lines.append(
            "- kme retainability over 1,000 sequential edits >= -0.001 per edit: not measured"
        )
    else:
        verdict = "met" if eff.per_edit.value >= -0.001 else "missed"
        lines.append(
            f"- kme retainability >= -0.001 per edit (efficacy, {eff.first:,} -> "
            f"{eff.last:,} edits): {eff.per_edit.value:+.5f}, {verdict} (lower "
            f"95% bound {eff.per_edit.low:+.5f})"
        )
    for method in ("rome", "memit"):
        other = retainability_estimates(by_method[method]) if method in by_method else []
        first = next((e for e in other if e.metric == "efficacy"), None)
        lines.append(
            f"- contrast, {method} written into the weights one edit at a time: "
            + (
                f"{first.per_edit.value:+.5f} per edit (efficacy, {first.first:,} -> "
                f"{first.last:,} edits; 95% CI {first.per_edit.low:+.5f} to "
                f"{first.per_edit.high:+.5f})"
                if first
                else "not measured"
            )
        )
    manifest = _complete_manifest(results)
    lines.append(
        "- whole `bench all` (full) ≤ 3 hours: "
        + (
            f"{manifest['wall_seconds'] / 3600:.2f} h — "
            + ("met" if manifest["wall_seconds"] <= 3 * 3600 else "missed")
            if manifest
            else "not measured (no complete full run in these results)"
        )
    )
    return lines


def _complete_manifest(results: Results) -> dict[str, Any] | None:
    for r in results.of("bench-all"):
        d = r.data
        if d.get("size") == "full" and d.get("complete"):
            return d
    return None


def _manifest_line(r: Result) -> str:
    d = r.data
    runs = d.get("runs", [])
    failed = [x["name"] for x in runs if x.get("returncode")]
    scope = "complete plan" if d.get("complete") else "partial"
    status = f"failed: {', '.join(failed)}" if failed else "none failed"
    busy = sum(float(x.get("seconds", 0)) for x in runs)
    lanes = d.get("jobs") or 1
    return (
        f"`{r.path}` ({d.get('size')}, {scope}): {d.get('wall_seconds', 0):.0f} s wall in "
        f"{lanes} lane(s) on {d.get('machine', {}).get('cores', '?')} cores ({busy:.0f} s of "
        f"runs in all), {len(runs)} runs, {status}"
    )


def _wall_time(results: Results) -> list[str]:
    out = []
    for r in results.of("bench-all"):
        out.append(_manifest_line(r))
        out += [
            f"  - {x['name']}: {x['seconds']:.0f} s"
            + (f" (lane {x['lane']})" if "lane" in x else "")
            for x in r.data.get("runs", [])
        ]
    return out


def _bulk_import(results: Results) -> str:
    """The import rate of the largest scalability step, e.g. '; bulk import 165 edits/s'."""
    for r in results.of("scalability"):
        points = r.data["points"]
        if len(points) >= 2 and points[-1]["import_seconds"] > 0:
            before = int(points[-2]["edits_stored"])
            added = int(points[-1]["edits_stored"]) - before
            rate = added / float(points[-1]["import_seconds"])
            return f"; bulk import {rate:.0f} edits/s ({added:,} into a store of {before:,})"
    return ""


def _cost(results: Results) -> list[str]:
    rows = []
    ret = [r for r in results.of("retainability") if r.data["method"] == "kme"]
    adds = [s for r in ret for p in r.data["points"] for s in (p.get("add_seconds") or [])]
    memory_add = (
        f"memory add p50 {statistics.median(adds) * 1000:.0f} ms one at a time (n={len(adds)})"
        if adds
        else "memory add: not measured"
    ) + _bulk_import(results)
    for r in results.of("single") + results.of("weights"):
        d = r.data
        if d.get("dataset") != "counterfact":
            continue
        method = str(d.get("method"))
        secs = d.get("edit_seconds") or {}
        if method == "none":
            edit = DASH
        elif method in ("ike", "kme"):
            edit = memory_add
        elif method == "rome" and secs.get("per_edit_p50") is not None:
            edit = f"{secs['per_edit_p50']:.1f} s p50 / {secs['per_edit_p95']:.1f} s p95 per edit"
        elif secs.get("batch") is not None:
            written = d.get("edits_written") or d.get("n")  # kme+weights: may ask fewer
            edit = f"{secs['batch']:.0f} s for {written} edits (one batch)" + _reused(d)
        else:
            edit = DASH
        ms = latency_cell(d)
        rows.append(
            [
                method_label(d),
                edit,
                ms,
                str(d.get("prompt_tokens_per_question") or DASH),
                r.source,
            ]
        )
    header = (
        "method (CounterFact)",
        "edit time",
        "answer p50 / p95 ms",
        "tokens / question",
        "from",
    )
    return markdown_table(header, rows) if rows else []


SCALE_NOTE = (
    "One store grown through the sizes: CounterFact's probed evaluation cases stored first, "
    "then real and generated filler (`kme_rag/bench/scale.py`). Locality counts a probe kept "
    "when its plan passes it through (sent as typed) or when the editor's answer is identical "
    "to the unedited model's; *routed* rows are routing diagnostics. Nothing was tuned for it."
)


def render_report(results: Results, figures: dict[str, str], *, title_note: str = "") -> str:
    """The whole REPORT.md. ``figures``: caption → image path relative to the report."""
    singles = results.of("single") + [r for r in results.of("weights") if "counts" in r.data]
    lines = [
        "# kme_rag: every method side by side",
        "",
        "Generated by `kme bench all` (`kme bench all --report-only` rebuilds it from the "
        "result JSONs); do not edit by hand. Local Gemma 3 270M (Q4_K_M through llama.cpp; "
        "ROME/MEMIT on its converted weights in torch), a 2-core CPU machine. Timings were "
        "measured on a **loaded machine** (other benchmarks shared the 2 cores, niceness 19)."
        + (f" {title_note}" if title_note else ""),
        "",
        KME_ROUTE,
        "",
        DEFINITIONS,
    ]
    for dataset, title in (
        ("counterfact", "CounterFact (evaluation split)"),
        ("zsre", "zsRE (evaluation records 500-999)"),
    ):
        lines += _section(f"Single-hop: {title}", single_hop_table(singles, dataset))
    lines += _section(
        "Held-out natural questions (`benchmarks/heldout/natural-v1.jsonl`)",
        [*natural_table(results.of("natural")), "", NATURAL_NOTE] if results.of("natural") else [],
    )
    lines += _section(
        "Held-out two-hop and follow-up questions (`benchmarks/heldout/multihop-v1.jsonl`)",
        [*conversations_table(results.of("conversations")), "", CONVERSATIONS_NOTE]
        if results.of("conversations")
        else [],
    )
    lines += _section(
        "Held-out free-text statements (`benchmarks/heldout/freetext-v1.jsonl`)",
        [*freetext_table(results.of("freetext")), "", FREETEXT_NOTE]
        if results.of("freetext")
        else [],
    )
    lines += _section("ROME / MEMIT probability tests", probability_table(results.of("weights")))
    lines += _section("Cost: edit time, latency, tokens", _cost(results))
    lines += _section("Portability: MQuAKE multi-hop", multihop_table(results.of("multihop")))
    lines += _section("Scalability (Eq. 13/14)", _scalability(results))
    lines += _section("Retainability (Eq. 12)", _retainability(results))
    lines += _section(
        "The edit memory at scale (`kme bench scale`)",
        [*scale_table(results.of("scale")), SCALE_NOTE] if results.of("scale") else [],
    )
    lines += _section("Figures", [f"![{c}]({p})\n" for c, p in figures.items()])
    lines += _section("Published anchors (other models; not comparable runs)", _anchors())
    lines += _section("Targets (issue 8)", _targets(results))
    lines += _section(
        "Wall time of `bench all`",
        _wall_time(results) or ["Not measured: no `bench all` manifest in these results."],
    )
    every = sorted(
        (r for rs in results.by_kind.values() for r in rs if r.kind != "bench-all"),
        key=lambda r: r.path,
    )
    lines += _section("Commands", _commands(every))
    return "\n".join(lines).rstrip() + "\n"
