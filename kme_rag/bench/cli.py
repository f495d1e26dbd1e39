"""``kme bench``: one subcommand per benchmark, typed options, frozen parameter objects.

Each command checks its options (Typer does the choices), builds the run's parameters
and hands them to the runner of its method family; the runners write the result JSON and
its rows (:mod:`kme_rag.bench.output`). Heavy imports wait until a command runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, cast

import typer

from kme_rag.errors import ValidationError
from kme_rag.settings import Settings

__all__ = ["bench_app"]

bench_app = typer.Typer(
    help="Benchmarks: CounterFact, zsRE, MQuAKE, the natural set, the curves, and `all` "
    "(REPORT.md).",
    no_args_is_help=True,
)


class SingleMethod(StrEnum):
    none = "none"
    ike = "ike"
    kme = "kme"
    rome = "rome"
    memit = "memit"
    kme_weights = "kme+weights"


class MquakeMethod(StrEnum):
    none = "none"
    mello = "mello"
    kme = "kme"
    walker = "walker"
    kme_weights = "kme+weights"


class CurveMethod(StrEnum):
    kme = "kme"
    rome = "rome"
    memit = "memit"


class NaturalMethod(StrEnum):
    none = "none"
    kme = "kme"


class EditsMode(StrEnum):
    one = "one"
    all = "all"


class ScopeKind(StrEnum):
    classifier = "classifier"
    similarity = "similarity"


class EditsAs(StrEnum):
    structured = "structured"
    sentence = "sentence"


class AnswerMode(StrEnum):
    prefill = "prefill"
    generate = "generate"


ANSWER = typer.Option(
    AnswerMode.prefill,
    help="kme: prefill the new object (routing) or let the model write the whole answer "
    "under the fact block (generate: the generated efficacy).",
)


def _settings(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    return cast(Settings, root.obj["settings"])


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


OUT = typer.Option(..., help="Summary JSON; the per-case rows go beside it.")
STATS = typer.Option(None, help="rome/memit/kme+weights: WikiText-2 windows for C (default 4,000).")
MAX_TOKENS = typer.Option(16, help="Tokens generated per answer.")


_LABELS = {"counterfact": "CounterFact", "zsre": "zsRE"}


def _single(dataset: Literal["counterfact", "zsre"]) -> Callable[..., None]:
    """The command of one single-hop dataset (its evaluation split)."""

    def command(
        ctx: typer.Context,
        method: SingleMethod = typer.Option(SingleMethod.kme, help="ike: ungated IKE."),
        n: int = typer.Option(100, min=1, help="How many cases."),
        edits: EditsMode = typer.Option(EditsMode.all, help="all: every edit stored first."),
        edits_as: EditsAs = typer.Option(
            EditsAs.structured,
            help="ike/kme, CounterFact: sentence stores each edit only as its sentence "
            "(prompt + new object), read into facts as `kme edit add --text` reads it.",
        ),
        out: Path = OUT,
        data: Path | None = typer.Option(None, help="Evaluate this file (same format)."),
        max_tokens: int = MAX_TOKENS,
        ike_demos: int = typer.Option(4, help="Demonstrations per prompt for --method ike."),
        scope: ScopeKind = typer.Option(ScopeKind.classifier, help="kme's scope step."),
        answer: AnswerMode = ANSWER,
        generate_n: int | None = typer.Option(
            None, help="rome/memit/kme+weights: generation metrics on the first N cases."
        ),
        checkpoint_every: int = typer.Option(
            10, help="rome --edits all: re-score the first 10 edits every this many edits."
        ),
        stats_samples: int | None = STATS,
        references: Path | None = typer.Option(
            None,
            help="ike/kme: the JSON of a --method none run of these cases; its unedited "
            "answers are reused, asked again on every 4th case only (latency, and a check).",
        ),
    ) -> None:
        settings = _settings(ctx)
        if edits_as == EditsAs.sentence and (
            dataset != "counterfact" or method not in (SingleMethod.ike, SingleMethod.kme)
        ):
            raise ValidationError("expected --edits-as sentence only on counterfact, ike or kme")
        if references is not None and method not in (SingleMethod.ike, SingleMethod.kme):
            raise ValidationError("expected --references only with --method ike or kme")
        if method in (SingleMethod.rome, SingleMethod.memit, SingleMethod.kme_weights):
            weighted = WeightRun(
                dataset=dataset,
                method=cast(Literal["rome", "memit", "kme+weights"], method.value),
                n=n,
                edits_mode=edits.value,
                data=data,
                max_tokens=max_tokens,
                generate_n=generate_n,
                checkpoint_every=checkpoint_every,
                stats_samples=stats_samples,
            )
            _weights(settings, weighted, out)
            return
        from kme_rag.bench.harness import MemoryRun, bench_memory

        run = MemoryRun(
            dataset=dataset,
            method=cast(Literal["none", "ike", "kme"], method.value),
            n=n,
            edits_mode=edits.value,
            max_tokens=max_tokens,
            ike_demos=ike_demos,
            scope=scope.value,
            data=data,
            references=references,
            answer=answer.value,
            edits_as=edits_as.value,
        )
        summary = bench_memory(settings, run, out)
        _echo({k: summary[k] for k in ("metrics", "latency_ms", "prompt_tokens_per_question")})

    command.__doc__ = (
        f"{_LABELS[dataset]}'s evaluation split: the unedited model (none), IKE, kme, or the "
        "weights (rome, memit, kme+weights), greedy decoding."
    )
    return command


@dataclass(frozen=True, kw_only=True)
class WeightRun:
    """One ``kme bench counterfact|zsre`` run of a weight method."""

    dataset: Literal["counterfact", "zsre"]
    method: Literal["rome", "memit", "kme+weights"]
    n: int
    edits_mode: Literal["one", "all"]
    data: Path | None
    max_tokens: int
    generate_n: int | None
    checkpoint_every: int
    stats_samples: int | None


def _weights(settings: Settings, run: WeightRun, out: Path) -> None:
    """The weight methods of ``kme bench counterfact|zsre``."""
    from kme_rag.bench.harness import load_cases
    from kme_rag.bench.weights import WeightBenchParams, bench_weights, scratch_weights

    cases = load_cases(run.dataset, settings.data_dir, run.n, run.data)
    weights = scratch_weights(settings, run.stats_samples)
    if run.method == "kme+weights":
        from kme_rag.bench.memory_weights import bench_consolidated
        from kme_rag.bench.provenance import provenance

        if run.edits_mode != "all":
            raise ValidationError("expected --edits all with --method kme+weights")
        summary = bench_consolidated(
            settings, run.dataset, cases, out, provenance(), run.max_tokens, weights, run.generate_n
        )
        _echo({k: summary[k] for k in ("metrics", "edit_seconds")})
        return
    params = WeightBenchParams(
        method=run.method,
        edits_mode=run.edits_mode,
        max_tokens=run.max_tokens,
        generate_n=run.generate_n,
        checkpoint_every=run.checkpoint_every,
    )
    summary = bench_weights(weights, run.dataset, cases, params, out)
    keys = ("probability", "unedited_probability", "metrics", "edit_seconds")
    _echo({k: summary[k] for k in keys if k in summary})


bench_app.command("counterfact")(_single("counterfact"))
bench_app.command("zsre")(_single("zsre"))


@bench_app.command("mquake")
def mquake(
    ctx: typer.Context,
    method: MquakeMethod = typer.Option(
        MquakeMethod.kme,
        help="kme: as `kme ask` answers (the walk a route of the editor's plan); walker: the "
        "graph walk alone (a diagnostic).",
    ),
    n: int = typer.Option(100, min=1, help="How many cases."),
    edits: EditsMode = typer.Option(EditsMode.all, help="all: every case's edits stored first."),
    out: Path = OUT,
    data: Path | None = typer.Option(None, help="Evaluate this file [the CF-3k subset]."),
    known_facts: bool = typer.Option(
        False, "--known-facts", help="kme: import the cases' unedited facts as trusted facts."
    ),
    passages: bool = typer.Option(
        False,
        "--passages",
        help="kme/walker: store each edit only as AKEW's free-text passage (fact_new_uns), "
        "read into facts as `kme edit add --text` reads it; implies --single-hop.",
    ),
    single_hop: bool = typer.Option(
        False, "--single-hop", help="Also ask each edited hop's own question."
    ),
    stats_samples: int | None = STATS,
) -> None:
    """MQuAKE multi-hop: the unedited model, MeLLo, the editor as `kme ask` answers (kme),
    the graph walk alone (walker, a diagnostic), or the walk on weights holding every
    case's edits (kme+weights)."""
    from kme_rag.bench.mquake import bench_mquake, load_cases
    from kme_rag.bench.provenance import provenance

    if known_facts and method not in (MquakeMethod.kme, MquakeMethod.walker):
        raise ValidationError("expected --known-facts only with --method kme or walker")
    if passages and method not in (MquakeMethod.kme, MquakeMethod.walker):
        raise ValidationError("expected --passages only with --method kme or walker")
    settings = _settings(ctx)
    path, cases = load_cases(settings, data, n)
    weights = None
    if method == MquakeMethod.kme_weights:
        from kme_rag.bench.weights import scratch_weights

        weights = scratch_weights(settings, stats_samples)
    summary = bench_mquake(
        settings,
        method.value,
        cases,
        edits.value,
        out,
        dataset=path.name,
        known_path=path if known_facts else None,
        provenance=provenance(),
        weights=weights,
        edits_as="passage" if passages else "structured",
        single_hop=single_hop or passages,
    )
    _echo(summary["metrics"])


@bench_app.command("natural")
def natural(
    ctx: typer.Context,
    method: NaturalMethod = typer.Option(
        NaturalMethod.kme, help="kme: the editor `kme ask` builds; none: the unedited model."
    ),
    edits: EditsMode = typer.Option(EditsMode.all, help="all: every edit stored first."),
    out: Path = OUT,
    data: Path = typer.Option(
        Path("benchmarks/heldout/natural-v1.jsonl"), help="The held-out natural set (JSONL)."
    ),
    generate: bool = typer.Option(
        True, help="kme: also ask in-scope questions with nothing prefilled (generated figures)."
    ),
) -> None:
    """The held-out natural set: formal, casual and chat questions on each edit, its
    subject's other relations and its neighbours, asked as `kme ask` asks them."""
    from kme_rag.bench.natural import NaturalRun, bench_natural

    run = NaturalRun(method=method.value, edits_mode=edits.value, data=data, generate=generate)
    summary = bench_natural(_settings(ctx), run, out)
    _echo({k: summary[k] for k in ("figures", "routing_diagnostic", "counts", "latency_ms")})


@bench_app.command("freetext")
def freetext(
    ctx: typer.Context,
    out: Path = OUT,
    data: Path = typer.Option(
        Path("benchmarks/heldout/freetext-v1.jsonl"), help="The held-out free-text set (JSONL)."
    ),
    gate: bool = typer.Option(
        True, help="Statements gated by the names they speak of (--no-gate: an ablation)."
    ),
    patterns: bool = typer.Option(
        False, "--patterns", help="Ablation: the pattern extractor reads the text."
    ),
) -> None:
    """The held-out free-text set: each statement stored alone with `kme edit add --text`'s
    reader, its questions and must-not-change questions asked as `kme ask` asks them."""
    from kme_rag.bench.freetext import FreeTextRun, bench_freetext

    run = FreeTextRun(data=data, gate=gate, patterns=patterns)
    summary = bench_freetext(_settings(ctx), run, out)
    _echo({k: summary[k] for k in ("figures", "add_text_ms", "counts")})


@bench_app.command("conversations")
def conversations(
    ctx: typer.Context,
    out: Path = OUT,
    data: Path = typer.Option(
        Path("benchmarks/heldout/multihop-v1.jsonl"), help="The held-out two-hop set (JSONL)."
    ),
    verification: Path = typer.Option(
        Path("benchmarks/heldout/verification-multihop-v1.json"),
        help="Which items' unedited hop the model knows (verify_multihop.py).",
    ),
    walker: bool = typer.Option(True, help="Also the walker alone (a diagnostic)."),
) -> None:
    """The held-out two-hop and follow-up set: each item with its edit alone, through the
    editor `kme ask` and `kme chat` build."""
    from kme_rag.bench.conversations import ConversationRun, bench_conversations

    run = ConversationRun(data=data, verification=verification, walker_diagnostic=walker)
    summary = bench_conversations(_settings(ctx), run, out)
    _echo({k: summary[k] for k in ("figures", "routes", "latency_ms")})


@bench_app.command("scale")
def scale(
    ctx: typer.Context,
    out: Path = OUT,
    sizes: str = typer.Option("10000,100000", help="Comma-separated store sizes, growing."),
    cases: int = typer.Option(200, min=1, help="CounterFact evaluation cases probed."),
    repeats: int = typer.Option(3, min=1, help="Cold opens per size (median)."),
    answers: bool = typer.Option(
        True, help="Answer the probes that do not pass through (the model runs)."
    ),
) -> None:
    """The edit memory at scale: import rate, cold open, RSS, retrieval + scope latency and
    locality at each size (one embedded store, or the Chroma server of KME_CHROMA_URL; the
    store must be empty). 1M runs as `--sizes 10000,100000,1000000` (hours here)."""
    from kme_rag.bench.output import write_result
    from kme_rag.bench.scale import ScaleRun, bench_scale, markdown

    try:
        grown = tuple(int(size) for size in sizes.split(","))
    except ValueError:
        raise ValidationError(f"expected --sizes like 10000,100000, got {sizes!r}") from None
    if list(grown) != sorted(set(grown)) or grown[0] < cases:
        raise ValidationError(f"expected growing --sizes of at least --cases, got {sizes!r}")
    settings = _settings(ctx)
    run = ScaleRun(sizes=grown, cases=cases, repeats=repeats, answers=answers)
    result = write_result(out, bench_scale(settings, run, settings.data_dir))
    out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    _echo(
        [
            {k: size[k] for k in ("size", "import", "open", "decision_ms")}
            for size in result["sizes"]
        ]
    )


def _curve(kind: Literal["scalability", "retainability"]) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        sizes: str = typer.Option(..., help="Comma-separated store sizes or checkpoints."),
        method: CurveMethod = typer.Option(
            CurveMethod.kme, help="retainability: also rome or memit writing each edit."
        ),
        probe_n: int = typer.Option(100, min=1, help="Cases probed at each point."),
        max_tokens: int = MAX_TOKENS,
        out: Path = OUT,
        stats_samples: int | None = STATS,
    ) -> None:
        from kme_rag.bench.curve_runs import bench_curve
        from kme_rag.bench.curves import CurveParams
        from kme_rag.bench.provenance import provenance
        from kme_rag.bench.weights import scratch_weights

        try:
            steps = tuple(int(s) for s in sizes.split(","))
        except ValueError:
            raise ValidationError(f"expected comma-separated integers, got {sizes!r}") from None
        settings = _settings(ctx)
        curve = CurveParams(sizes=steps, probe_n=probe_n, max_tokens=max_tokens)
        how: Literal["kme", "rome", "memit"] = method.value
        weights = scratch_weights(settings, stats_samples) if how != "kme" else None
        summary = bench_curve(settings, kind, curve, out, provenance(), how, weights)
        _echo([{k: v for k, v in p.items() if k != "add_seconds"} for p in summary["points"]])

    command.__doc__ = (
        "The kme route against the number of edits stored (CounterFact)."
        if kind == "scalability"
        else "Earlier edits re-probed as later ones are added (CounterFact)."
    )
    return command


bench_app.command("scalability")(_curve("scalability"))
bench_app.command("retainability")(_curve("retainability"))


@bench_app.command("all")
def bench_all(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="The small CI plan (≤ 5 minutes)."),
    report_only: bool = typer.Option(
        False, "--report-only", help="Rebuild REPORT.md from the result JSONs, run nothing."
    ),
    only: str | None = typer.Option(
        None, help="Comma-separated run names of the plan to run (default: every run)."
    ),
    results: Path = typer.Option(
        Path("benchmarks"), help="Folder of results/<date>/ and REPORT.md."
    ),
    jobs: int | None = typer.Option(
        None,
        min=1,
        help="Runs at once, each pinned to its share of the CPUs (default: one per CPU).",
    ),
) -> None:
    """Every method on every dataset it applies to, then REPORT.md."""
    from kme_rag.bench import run_all

    names = tuple(s for s in (only or "").split(",") if s)
    report = run_all.bench_all(
        _settings(ctx), results, quick=quick, only=names, report_only=report_only, jobs=jobs
    )
    typer.echo(f"wrote {report}")


@bench_app.command("rescore")
def rescore_results(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Result JSONs (their .cases.jsonl beside them)."),
    record: Path | None = typer.Option(
        None, help="Write what was checked and what moved here (JSON)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would move; write nothing."),
) -> None:
    """Score stored answers again with today's matcher; a result whose figures move is
    rewritten (the run-time figures kept as metrics_as_run)."""
    from kme_rag.bench.provenance import provenance
    from kme_rag.bench.rescore import rescore

    settings = _settings(ctx)
    command = f"kme bench rescore ({len(paths)} results" + (
        f"; record {record})" if record else ")"
    )
    checked: dict[str, Any] = {}
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "cases_file" not in data:
            continue  # a chains file or a result without stored answers
        moved = rescore(path, settings.data_dir, command=command, write=False)
        if moved and not dry_run:
            rescore(path, settings.data_dir, command=command)
        checked[str(path)] = moved
        typer.echo(f"{path}: {moved or 'unchanged'}")
    if record is not None and not dry_run:
        record.parent.mkdir(parents=True, exist_ok=True)
        body = {**provenance(), "checked": checked}
        record.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
