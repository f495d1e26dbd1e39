"""ROME and MEMIT on the harness's cases: probability and generation metrics, edit time.

``kme bench counterfact --method rome|memit --edits one|all`` runs this. Three regimes:

- ``rome --edits one``: each edit is written, evaluated and undone (bit-exact) before the
  next, so every case sees the pristine model plus its own edit;
- ``memit --edits all``: all N edits are written in one batch first, then every case is
  evaluated;
- ``rome --edits all``: the edits are written one after another, never undone; every
  ``checkpoint_every`` edits the first ``decay_probe`` edits and their neighbourhoods are
  scored again, which shows how sequential ROME forgets and spreads.

Two families of metrics per case, both against the unedited model measured in the same run:

- ROME's *probability* scores: efficacy and paraphrase (P(new) > P(true) after the edit's
  prompt / paraphrase) and neighbourhood (P(true) > P(new) after the neighbourhood prompt);
- the harness's *generation* rows (:func:`kme_rag.bench.harness.summarise`): greedy answers to
  the prompt, paraphrase and neighbourhood prompt from the edited weights (route
  ``weights``), with locality = identical to the unedited weights' own answer.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kme_rag.backends import QA_STOP, qa_prompt
from kme_rag.bench.harness import PROBES, Case, percentile, summarise
from kme_rag.bench.provenance import provenance
from kme_rag.errors import ValidationError
from kme_rag.whitebox.backend import TorchBackend
from kme_rag.whitebox.edit_requests import probability_metrics
from kme_rag.whitebox.session import Method, WeightEditor

if TYPE_CHECKING:
    from kme_rag.settings import Settings

__all__ = [
    "WeightBenchParams",
    "bench_weights",
    "probability_scores",
    "run_weight_cases",
    "scratch_weights",
    "summarise_weights",
]


@dataclass(frozen=True, kw_only=True)
class WeightBenchParams:
    """What :func:`run_weight_cases` runs; ``generate_n`` limits the (slow) generation
    metrics to the first N cases (``None``: all). With ``--edits all`` the answers of
    ``answer_batch`` cases are decoded in one call, and a probe's latency is that call's
    time per prompt (throughput; ``batch_rows`` in the rows and summary says how many)."""

    method: Method
    edits_mode: Literal["one", "all"]
    max_tokens: int = 16
    generate_n: int | None = None
    answer_batch: int = 8  # --edits all: cases per batched generate call (3 prompts each)
    checkpoint_every: int = 10
    decay_probe: int = 10


def probability_scores(weights: WeightEditor, case: Case) -> dict[str, Any]:
    """ROME's three probability tests on ``case`` under the model as it is now."""
    edit = case.edit
    if edit.target_new is None or edit.target_true is None or case.locality_answer is None:
        raise ValidationError(f"case {case.case_id} lacks a true object or neighbourhood answer")
    model, tokenizer = weights.loaded.model, weights.loaded.tokenizer
    prompt, paraphrase = (
        probability_metrics(model, tokenizer, text, edit.target_new, edit.target_true)
        for text in _scored_prompts(case)[:2]
    )
    neighbour = probability_metrics(
        model, tokenizer, _scored_prompts(case)[2], edit.target_new, case.locality_answer
    )
    return {
        "efficacy": prompt.success,
        "paraphrase": paraphrase.success,
        "neighbourhood": not neighbour.success,  # the neighbour's true object stays ahead
        "logprob_new": round(prompt.new.mean, 4),
        "logprob_true": round(prompt.true.mean, 4),
    }


def _scored_prompts(case: Case) -> tuple[str, str, str]:
    """The three prompts as the model sees them: clozes as they are, questions Q/A framed."""
    texts = (case.prompt, case.paraphrase, case.locality)
    if case.kind == "cloze":
        return texts
    a, b, c = (qa_prompt([{"role": "user", "content": t}]) for t in texts)
    return a, b, c


@dataclass(frozen=True)
class _Answers:
    """One case's greedy answers to its three probes, and what the call that made them cost
    per probe (``ms``) with how many prompts it decoded at once (``rows``)."""

    texts: list[str]
    ms: float
    rows: int


def _answer_cases(
    backend: TorchBackend, cases: Sequence[Case], max_tokens: int, group: int = 1
) -> list[_Answers]:
    """Greedy answers to every case's three probes, ``group`` cases per batched call (one
    decoding step reads the weights once for every row: 24 rows cost ~4x less per row than
    3 on this CPU); a call never mixes clozes with questions (they stop differently)."""
    out: list[_Answers] = []
    for kind, same in itertools.groupby(cases, key=lambda c: c.kind):
        run = list(same)
        for chunk in (run[i : i + group] for i in range(0, len(run), group)):
            prompts = [text for case in chunk for text in _scored_prompts(case)]
            stop = () if kind == "cloze" else QA_STOP
            start = time.perf_counter()
            texts = backend.complete_many(prompts, max_tokens=max_tokens, stop=stop)
            ms = (time.perf_counter() - start) * 1000 / len(prompts)
            texts = texts if kind == "cloze" else [t.strip() for t in texts]
            n = len(PROBES)
            out += [
                _Answers(texts[j * n : (j + 1) * n], ms, len(prompts)) for j in range(len(chunk))
            ]
    return out


def _row(
    weights: WeightEditor,
    case: Case,
    unedited: dict[str, Any],
    edit_seconds: float | None,
    answers: tuple[_Answers, _Answers] | None,
) -> dict[str, Any]:
    """A case's row: the probability scores now and before the edit (``unedited``), and,
    when ``answers`` (unedited, edited) are given, its generation rows."""
    row: dict[str, Any] = {
        "case_id": case.case_id,
        "target_new": case.edit.target_new,
        "edit_seconds": None if edit_seconds is None else round(edit_seconds, 3),
        "unedited_probability": unedited,
        "probability": probability_scores(weights, case),
    }
    if answers is None:
        return row
    ref, now = answers
    for probe, text, reference in zip(PROBES, now.texts, ref.texts, strict=True):
        row[probe] = {
            "question": getattr(case, probe),
            "reference": reference,
            "reference_ms": ref.ms,
            "text": text,
            "route": "weights",
            "latency_ms": now.ms,
            "batch_rows": now.rows,
            "prompt_tokens": weights.backend.count_tokens(getattr(case, probe)),
        }
    return row


def run_weight_cases(
    cases: Sequence[Case], weights: WeightEditor, params: WeightBenchParams
) -> Iterator[dict[str, Any]]:
    """Evaluate ``params.method`` on ``cases``; yield one row per case (then, for
    sequential ROME, a last row ``{"decay": [...]}`` with the checkpoints)."""
    limit = len(cases) if params.generate_n is None else params.generate_n
    backend, tokens = weights.backend, params.max_tokens
    if params.edits_mode == "one":  # the weights change per case: one case per call
        for i, case in enumerate(cases):
            unedited = probability_scores(weights, case)
            ref = _answer_cases(backend, [case], tokens)[0] if i < limit else None
            (record,) = weights.write([case.edit], params.method)
            pair = (ref, _answer_cases(backend, [case], tokens)[0]) if ref else None
            yield _row(weights, case, unedited, record.seconds, pair)
            weights.undo()  # bit-exact: the next case sees the pristine weights
        return
    before = [probability_scores(weights, c) for c in cases]
    refs = _answer_cases(backend, cases[:limit], tokens, params.answer_batch)
    decay: list[dict[str, Any]] = []
    if params.method == "memit":
        (record,) = weights.write([c.edit for c in cases], "memit")
        seconds: list[float | None] = [None] * len(cases)
        batch_seconds = record.seconds
    else:
        seconds, batch_seconds = [], 0.0
        for i, case in enumerate(cases, start=1):
            (record,) = weights.write([case.edit], "rome")
            seconds.append(record.seconds)
            if i % params.checkpoint_every == 0 or i == len(cases):
                decay.append(_checkpoint(weights, cases[: min(i, params.decay_probe)], i))
    answers = _answer_cases(backend, cases[:limit], tokens, params.answer_batch)
    for i, (case, probs, sec) in enumerate(zip(cases, before, seconds, strict=True)):
        row = _row(weights, case, probs, sec, (refs[i], answers[i]) if i < limit else None)
        if params.method == "memit":
            row["batch_seconds"] = batch_seconds
        yield row
    if decay:
        yield {"decay": decay}


def _checkpoint(weights: WeightEditor, first: Sequence[Case], edits: int) -> dict[str, Any]:
    """Probability scores of the first edits after ``edits`` sequential edits."""
    scores = [probability_scores(weights, c) for c in first]
    n = len(scores)
    return {
        "edits_applied": edits,
        "probed": n,
        "efficacy": round(sum(s["efficacy"] for s in scores) / n, 4),
        "paraphrase": round(sum(s["paraphrase"] for s in scores) / n, 4),
        "neighbourhood": round(sum(s["neighbourhood"] for s in scores) / n, 4),
    }


def summarise_weights(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Probability scores (edited and unedited), edit time, and — on the rows that have
    them — the harness's generation metrics."""
    cases = [r for r in rows if "case_id" in r]
    n = len(cases)

    def share(field: str, key: str) -> float:
        return round(sum(bool(r[field][key]) for r in cases) / n, 4) if n else 0.0

    times = [float(r["edit_seconds"]) for r in cases if r.get("edit_seconds") is not None]
    batch = next((float(r["batch_seconds"]) for r in cases if "batch_seconds" in r), None)
    generated = [r for r in cases if "prompt" in r]
    summary: dict[str, Any] = {
        "probability": {
            k: share("probability", k) for k in ("efficacy", "paraphrase", "neighbourhood")
        },
        "unedited_probability": {
            k: share("unedited_probability", k) for k in ("efficacy", "paraphrase", "neighbourhood")
        },
        "edit_seconds": {
            "per_edit_p50": round(statistics.median(times), 2) if times else None,
            "per_edit_p95": round(percentile(times, 0.95), 2) if times else None,
            "batch": batch,
        },
        "generation_cases": len(generated),
    }
    if generated:
        summary.update(summarise(generated))
        calls = [r[p]["batch_rows"] for r in generated for p in PROBES if "batch_rows" in r[p]]
        if calls:
            summary["latency_ms"]["batch_rows"] = int(statistics.median(calls))
    decay = next((r["decay"] for r in rows if "decay" in r), None)
    if decay is not None:
        summary["decay"] = decay
    return summary


def scratch_weights(settings: Settings, stats_samples: int | None = None) -> WeightEditor:
    """The local model on a scratch deltas folder (the user's weight edits untouched);
    ``stats_samples``: WikiText-2 windows for C (default 4,000)."""
    from kme_rag.whitebox.second_moments import StatsParams
    from kme_rag.whitebox.session import WeightEditParams

    stats = StatsParams() if stats_samples is None else StatsParams(samples=stats_samples)
    return WeightEditor.open_scratch(settings, params=WeightEditParams(stats=stats))


def bench_weights(
    weights: WeightEditor, dataset: str, cases: list[Case], params: WeightBenchParams, out: Path
) -> dict[str, Any]:
    """``kme bench … --method rome|memit``: weight editing on the local model; writes
    ``out`` and its rows."""
    import dataclasses

    import torch

    from kme_rag.bench.output import CaseRows, write_result

    with CaseRows(out, len(cases)) as table:
        rows = table.extend(run_weight_cases(cases, weights, params))
    layers = (
        weights.memit_params().layers if params.method == "memit" else [weights.rome_params().layer]
    )
    stats = weights.second_moments(list(layers))
    summary = {
        "dataset": dataset,
        "method": params.method,
        "model": weights.backend.name,
        "model_identity": weights.loaded.identity,
        "n": len([r for r in rows if "case_id" in r]),
        "edits_mode": params.edits_mode,
        "layers": list(layers),
        "statistics": {
            str(layer): {"source": m.source, "tokens": m.tokens} for layer, m in stats.items()
        },
        **summarise_weights(rows),
        # δs read back from the target cache (optimised earlier on the same weights, e.g.
        # by a ROME run before this MEMIT run): their first optimisation is not in this
        # run's edit time but in reused_seconds
        "target_cache": dataclasses.asdict(weights.target_counts),
        **provenance(),
    }
    summary["machine"]["torch_threads"] = torch.get_num_threads()
    return write_result(out, summary, table)
