"""The ``kme`` command line: manage edits, ask the model, run the demo.

User mistakes print one ``error: ...`` line on stderr and exit 1; no tracebacks.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, Literal, cast

import typer

from kme_rag.bench.provenance import provenance
from kme_rag.editor import KnowledgeEditor
from kme_rag.errors import KmeError, ValidationError
from kme_rag.memory.edit import Edit, parse_edit
from kme_rag.memory.formats import Format
from kme_rag.memory.store import EditMemory
from kme_rag.server.cli import serve
from kme_rag.settings import Settings
from kme_rag.whitebox.cli import whitebox_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="kme",
    help="Edit what a language model knows, without retraining it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
edit_app = typer.Typer(help="Add, inspect, undo, import and export edits.", no_args_is_help=True)
app.add_typer(edit_app, name="edit")
scope_app = typer.Typer(help="Train and evaluate the scope classifier.", no_args_is_help=True)
app.add_typer(scope_app, name="scope")
app.add_typer(whitebox_app, name="whitebox")
app.command("serve")(serve)


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


def _memory(ctx: typer.Context) -> EditMemory:
    if "memory" not in ctx.obj:
        ctx.obj["memory"] = EditMemory.open(_settings(ctx))
    return ctx.obj["memory"]  # type: ignore[no-any-return]


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValidationError(f"expected {name} to be one of {', '.join(allowed)}, got {value!r}")


def _line(edit: Edit) -> str:
    flag = "" if edit.status == "active" else f" [{edit.status}]"
    return f"{edit.id}  {edit.statement}{flag}"


@app.callback()
def _root(
    ctx: typer.Context,
    store: Path | None = typer.Option(None, help="Embedded store folder (env KME_STORE)."),
    namespace: str | None = typer.Option(None, help="Edit namespace (env KME_NAMESPACE)."),
    chroma_url: str | None = typer.Option(None, help="Chroma server URL (env KME_CHROMA_URL)."),
) -> None:
    overrides: dict[str, Any] = {"store": store, "namespace": namespace, "chroma_url": chroma_url}
    ctx.obj = {"settings": Settings(**{k: v for k, v in overrides.items() if v is not None})}


@edit_app.command("add")
def edit_add(
    ctx: typer.Context,
    subject: str | None = typer.Option(None, help="Whom the fact is about."),
    relation: str | None = typer.Option(None, help='"capital", or a template "{} is in".'),
    new: str | None = typer.Option(None, "--new", help="The new object."),
    old: str | None = typer.Option(None, "--old", help="The object the model believes now."),
    prompt: str | None = typer.Option(None, help='Cloze template, "{} is located in".'),
    text: str | None = typer.Option(None, help="A free-text statement instead of a triple."),
    subject_alias: list[str] = typer.Option([], help="Another name of the subject (repeatable)."),
    target_alias: list[str] = typer.Option([], help="Another name of the new object."),
    paraphrase: list[str] = typer.Option(
        [], help="A rewording to check the edit on (repeatable; KME_WEIGHTS_POLICY=fallback)."
    ),
) -> None:
    """Add one edit and print its id. Under KME_WEIGHTS_POLICY=fallback the in-context
    route is checked on the edit's prompt and paraphrases first, and the edit is written
    into the local weights when it fails."""
    fields = {
        "subject": subject,
        "relation": relation,
        "target_new": new,
        "target_true": old,
        "prompt": prompt,
        "statement": text,
        "subject_aliases": subject_alias,
        "target_aliases": target_alias,
    }
    edit = parse_edit({k: v for k, v in fields.items() if v is not None})
    if _settings(ctx).weights_policy != "fallback":
        typer.echo(_memory(ctx).add(edit).id)
        return
    check = _editor(ctx).add_edit(edit, paraphrase)
    typer.echo(check.edit.id)
    for text, answer, ok in check.probes:
        typer.echo(f"  {'ok ' if ok else 'MISS'} {text!r} → {answer!r}", err=True)
    if check.written:
        typer.echo("  the in-context route missed: written into the local weights", err=True)


@edit_app.command("list")
def edit_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    all_: bool = typer.Option(False, "--all", help="Include superseded and deleted edits."),
    subject: str | None = typer.Option(None, help="Only edits about this subject."),
) -> None:
    """List the namespace's edits, oldest first."""
    edits = _memory(ctx).edits(status=None if all_ else "active", subject=subject)
    if as_json:
        _echo_json([e.model_dump(mode="json") for e in edits])
        return
    for edit in edits:
        typer.echo(_line(edit))


@edit_app.command("show")
def edit_show(ctx: typer.Context, edit_id: str) -> None:
    """Print one edit as JSON."""
    _echo_json(_memory(ctx).get(edit_id).model_dump(mode="json"))


@edit_app.command("rm")
def edit_rm(ctx: typer.Context, edit_id: str) -> None:
    """Delete an edit (undo brings it back)."""
    _memory(ctx).delete(edit_id)
    typer.echo(f"deleted {edit_id}")
    _warn_if_in_weights(_settings(ctx), (edit_id,))


def _warn_if_in_weights(settings: Settings, edit_ids: Sequence[str]) -> None:
    """A deleted edit that ``kme whitebox apply`` wrote into the local weights stays there
    (a weight delta is undone newest first, not picked out): say so, and how to undo it."""
    if not any(settings.weights_root.glob("*/manifest.json")):
        return  # nothing written into any weights: no need to import torch
    from kme_rag.whitebox.deltastore import written_edits

    written = written_edits(settings.weights_root)  # the manifests, read once
    for edit_id in (i for i in edit_ids if i in written):
        delta = written[edit_id]
        typer.echo(
            f"note: {edit_id} is still written into the local weights (delta {delta}); "
            "`kme whitebox list` shows the deltas, `kme whitebox undo` removes the newest",
            err=True,
        )


@edit_app.command("history")
def edit_history(
    ctx: typer.Context,
    subject: str = typer.Option(..., help="The subject."),
    relation: str = typer.Option(..., help="The relation."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every edit ever made to (subject, relation), oldest first."""
    edits = _memory(ctx).history(subject, relation)
    if as_json:
        _echo_json([e.model_dump(mode="json") for e in edits])
        return
    for edit in edits:
        typer.echo(f"{edit.created_at:%Y-%m-%d %H:%M:%S}  {_line(edit)}")


@edit_app.command("undo")
def edit_undo(ctx: typer.Context) -> None:
    """Revert the newest change (an add, an import or a delete)."""
    result = _memory(ctx).undo()
    typer.echo(result.describe())
    _warn_if_in_weights(_settings(ctx), result.removed)


@edit_app.command("import")
def edit_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The file to import."),
    fmt: str | None = typer.Option(
        None, "--format", help="jsonl, counterfact, zsre or mquake (default: detected)."
    ),
    limit: int | None = typer.Option(None, help="Read at most this many records."),
) -> None:
    """Import edits from a file, with a progress bar."""
    from tqdm import tqdm

    from kme_rag.memory.formats import FORMATS, detect_format, read_edits

    if fmt is not None and fmt not in FORMATS:
        raise ValidationError(f"expected --format to be one of {', '.join(FORMATS)}, got {fmt!r}")
    memory = _memory(ctx)
    kind: Format = fmt if fmt else detect_format(file)
    edits = read_edits(file, kind, limit)
    start = time.perf_counter()
    with tqdm(total=len(edits), unit="edit", file=sys.stderr) as bar:
        done = memory.import_edits(edits, kind, progress=bar.update)
    elapsed = time.perf_counter() - start
    copied = sum(1 for e in done if e.origin and e.namespace != e.origin.split("/", 1)[0])
    skipped = len(edits) - len(done)
    typer.echo(
        f"imported {len(done)} edits in {elapsed:.1f} s"
        + (f" ({copied} copied from another namespace, with new ids)" if copied else "")
        + (f"; {skipped} already in the store, skipped" if skipped else "")
    )


@edit_app.command("export")
def edit_export(ctx: typer.Context, file: Path) -> None:
    """Export every edit of the namespace (all statuses) as JSONL."""
    count = _memory(ctx).export(file)
    typer.echo(f"exported {count} edits to {file}")


def _editor(ctx: typer.Context) -> KnowledgeEditor:
    """The editor ``kme ask`` / ``chat`` use; with KME_WEIGHTS_POLICY other than ``memory``
    the local weights (and the deltas stored for them) are loaded too."""
    from kme_rag.backends import make_backend
    from kme_rag.editor import EditorParams
    from kme_rag.multihop.walk import build_walker

    settings, memory = _settings(ctx), _memory(ctx)
    backend = make_backend(settings)
    weights = None
    if settings.weights_policy != "memory":
        from kme_rag.whitebox.session import WeightEditor

        weights = WeightEditor.open(settings)
    return KnowledgeEditor(
        backend,
        memory,
        multihop=build_walker(settings, backend, memory),
        weights=weights,
        params=EditorParams(weights_policy=settings.weights_policy),
    )


@app.command("ask")
def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="The question."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Answer a question through the editor, with the stored edits applied."""
    answer = _editor(ctx).ask(question)
    if as_json:
        latency = round(answer.timings_ms["total_ms"], 1)
        _echo_json(
            {
                "answer": answer.text,
                "route": answer.route,
                "edits": answer.edit_ids,
                "latency_ms": latency,
                "hops": [
                    {"question": h.question, "answer": h.answer, "source": h.origin}
                    for h in answer.hops
                ],
            }
        )
        return
    typer.echo(answer.text)
    for hop in answer.hops:
        typer.echo(f"  hop: {hop.question} → {hop.answer} [{hop.origin}]", err=True)
    for edit in answer.edits:
        typer.echo(f"  [{answer.route}] {_line(edit)}", err=True)


@app.command("chat")
def chat(ctx: typer.Context) -> None:
    """An edit-aware chatbot in the terminal. Between turns: /edit S | R | NEW, /undo,
    /edits, /quit."""
    from kme_rag.chat import ChatSession

    session = ChatSession(_editor(ctx))
    typer.echo("kme chat: ask anything; /edit SUBJECT | RELATION | NEW, /undo, /edits, /quit")
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        reply = session.handle(line)
        if reply is None:
            break
        typer.echo(reply)


@app.command("demo")
def demo(ctx: typer.Context) -> None:
    """Ask the local model, add counterfactual edits, and show the store, graph and retrieval."""
    from kme_rag.demo import run_demo

    given = ctx.parent is not None and ctx.parent.params.get("store") is not None
    run_demo(_settings(ctx), use_settings_store=given)


@scope_app.command("train")
def scope_train(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, help="Weights file (.npz; the card goes beside)."),
    seed: int = typer.Option(0, help="Seed for sampling, the split and torch."),
) -> None:
    """Train the scope classifier on the training splits under KME_DATA_DIR; by default
    this rewrites the weights shipped in the package."""
    from kme_rag.memory.embedder import MiniLMEmbedder
    from kme_rag.scope.classifier import SHIPPED_WEIGHTS
    from kme_rag.scope.training import TrainParams, train_scope

    settings = _settings(ctx)
    _require_data(settings.data_dir)
    weights = train_scope(
        settings.data_dir,
        MiniLMEmbedder.from_settings(settings),
        out or SHIPPED_WEIGHTS,
        TrainParams(seed=seed),
    )
    _echo_json({"weights": str(out or SHIPPED_WEIGHTS), **weights.card["validation"]})


@scope_app.command("eval")
def scope_eval(
    ctx: typer.Context,
    data: Path | None = typer.Option(None, help="CounterFact-format file [the evaluation split]."),
    edits: int = typer.Option(1000, help="How many of the file's records to store as edits."),
    queries: int = typer.Option(1000, help="How many of the stored edits to ask about."),
    unrelated: int = typer.Option(500, help="Unrelated questions (zsRE evaluation loc)."),
    k: int = typer.Option(4, help="Nearest edits retrieved per search."),
    weights: Path | None = typer.Option(None, help="Weights to evaluate [the shipped ones]."),
    out: Path | None = typer.Option(None, help="Also write the full result JSON here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Recall and specificity of the scope classifier (and the similarity baseline) with
    EDITS edits stored at once, on held-out CounterFact-format records."""
    import platform
    import tempfile
    from datetime import datetime

    from tqdm import tqdm

    from kme_rag.bench.scope_eval import evaluate_scope
    from kme_rag.scope.base import ScopeModel
    from kme_rag.scope.classifier import ScopeWeights, TrainedScope
    from kme_rag.scope.similarity import SimilarityScope

    settings = _settings(ctx)
    path = data or settings.data_dir / "counterfact" / "counterfact-edit.json"
    if not path.is_file():
        raise ValidationError(f"expected a CounterFact-format file, got {str(path)!r}")
    if not 1 <= queries <= edits:
        raise ValidationError(f"expected 1 <= --queries <= --edits, got {queries} and {edits}")
    records = json.loads(path.read_text())[:edits]
    zsre = settings.data_dir / "zsre" / "zsre_mend_train-1k.json"
    loc = [r["loc"].removeprefix("nq question: ") for r in json.loads(zsre.read_text())[500:]]
    store = Path(tempfile.mkdtemp(prefix="kme-scope-eval-"))
    memory = EditMemory.open(settings.model_copy(update={"store": store, "chroma_url": None}))
    loaded = ScopeWeights.load(weights) if weights else ScopeWeights.load()
    models: list[ScopeModel] = [TrainedScope(memory.embedder, loaded), SimilarityScope()]
    total = 2 * min(queries, len(records)) + queries + unrelated
    with tqdm(total=total, unit="query", file=sys.stderr, desc="scope eval") as bar:
        result = evaluate_scope(
            memory,
            records,
            models,
            queries=queries,
            unrelated=loc[:unrelated],
            k=k,
            progress=bar.update,
        )
    main_model = result["models"]["classifier"]
    summary = {
        "recall": main_model["recall"],
        "specificity": main_model["specificity"],
        "threshold": main_model["threshold"],
        "latency_ms": main_model["latency_ms"],
        "n_in": result["n_in"],
        "n_out": result["n_out"],
        "baseline": {
            key: result["models"]["similarity"][key]
            for key in ("recall", "specificity", "threshold", "latency_ms")
        },
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        full = {
            **summary,
            **result,
            "data": str(path),
            "command": " ".join(["kme", *sys.argv[1:]]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": platform.platform(),
        }
        out.write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n")
    if as_json:
        _echo_json(summary)
        return
    for name, row in (("classifier", summary), ("similarity baseline", summary["baseline"])):
        typer.echo(
            f"{name}: recall {row['recall']:.2%}, specificity {row['specificity']:.2%}, "
            f"decision p50 {row['latency_ms']['p50']} ms"
        )


def _bench_mquake(
    settings: Settings,
    method: str,
    n: int,
    edits: Literal["one", "all"],
    out: Path,
    data: Path | None,
    known_facts: bool,
    stats_samples: int | None,
) -> None:
    """``kme bench mquake``: the unedited model, MeLLo, the graph walk (kme) or the walk
    on weights that hold every case's edits (kme+weights)."""
    from kme_rag.bench.mquake import Method, bench_mquake, load_cases

    if known_facts and method != "kme":
        raise ValidationError("expected --known-facts only with --method kme")
    path, cases = load_cases(settings, data, n)
    weights = _scratch_weights(settings, stats_samples) if method == "kme+weights" else None
    summary = bench_mquake(
        settings,
        cast(Method, method),
        cases,
        edits,
        out,
        dataset=path.name,
        known_path=path if known_facts else None,
        provenance=provenance(),
        weights=weights,
    )
    _echo_json(summary["metrics"])


def _scratch_weights(settings: Settings, stats_samples: int | None) -> Any:
    """The local model on a scratch deltas folder (the user's weight edits untouched)."""
    from kme_rag.whitebox.second_moments import StatsParams
    from kme_rag.whitebox.session import WeightEditor, WeightEditParams

    stats = StatsParams() if stats_samples is None else StatsParams(samples=stats_samples)
    return WeightEditor.open_scratch(settings, params=WeightEditParams(stats=stats))


def _bench_weights(weights: Any, dataset: str, cases: list[Any], params: Any, out: Path) -> None:
    """``kme bench … --method rome|memit``: weight editing on the local model."""
    import torch
    from tqdm import tqdm

    from kme_rag.bench.weights import run_weight_cases, summarise_weights

    rows = []
    cases_path = out.with_suffix(".cases.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    with cases_path.open("w") as fh, tqdm(total=len(cases), unit="case", file=sys.stderr) as bar:
        for row in run_weight_cases(cases, weights, params):
            rows.append(row)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            bar.update(1)
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
        "cases_file": cases_path.name,
    }
    summary["machine"]["torch_threads"] = torch.get_num_threads()
    out.write_text(json.dumps(summary, indent=2) + "\n")
    keys = ("probability", "unedited_probability", "metrics", "edit_seconds")
    _echo_json({k: summary[k] for k in keys if k in summary})


def _require_data(data_dir: Path) -> None:
    if not (data_dir / "counterfact" / "counterfact-train.json").is_file():
        raise ValidationError(
            f"expected the training data under {str(data_dir)!r} (set KME_DATA_DIR)"
        )


def main() -> None:
    """Entry point of the ``kme`` script."""
    import pydantic

    try:
        app()
    except KmeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from None
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        typer.echo(f"error: invalid setting {where}: {first['msg']}", err=True)
        raise SystemExit(1) from None


@app.command("bench")
def bench(
    ctx: typer.Context,
    dataset: str = typer.Argument(
        ..., help="counterfact, zsre, mquake, all, scalability or retainability."
    ),
    method: str = typer.Option(
        "kme",
        help="none, ike (ungated), kme, rome, memit, kme+weights; mquake: none, mello, kme, "
        "kme+weights.",
    ),
    n: int = typer.Option(100, help="How many cases."),
    edits: str = typer.Option("all", help="all: store every edit first; one: one at a time."),
    out: Path | None = typer.Option(
        None, help="Summary JSON; per-case rows go beside it (required but for all)."
    ),
    data: Path | None = typer.Option(None, help="Evaluate this file instead (same format)."),
    max_tokens: int = typer.Option(16, help="Tokens generated per answer."),
    ike_demos: int = typer.Option(4, help="Demonstrations per prompt for --method ike."),
    scope: str = typer.Option("classifier", help="kme's scope step: classifier or similarity."),
    known_facts: bool = typer.Option(
        False,
        "--known-facts",
        help="mquake, kme: import the cases' unedited facts as trusted facts (labelled mode).",
    ),
    generate_n: int | None = typer.Option(
        None,
        help="rome/memit/kme+weights: generation metrics on the first N cases (default: all).",
    ),
    checkpoint_every: int = typer.Option(
        10, help="rome --edits all: re-score the first 10 edits every this many edits."
    ),
    quick: bool = typer.Option(False, "--quick", help="all: the small CI plan (≤ 5 minutes)."),
    report_only: bool = typer.Option(
        False, "--report-only", help="all: rebuild REPORT.md from the result JSONs, run nothing."
    ),
    only: str | None = typer.Option(
        None, help="all: comma-separated run names of the plan to run (default: every run)."
    ),
    results: Path = typer.Option(
        Path("benchmarks"), help="all: folder of results/<date>/ and REPORT.md."
    ),
    sizes: str | None = typer.Option(
        None, help="scalability/retainability: comma-separated store sizes or checkpoints."
    ),
    probe_n: int = typer.Option(100, help="scalability/retainability: cases probed at each."),
    stats_samples: int | None = typer.Option(
        None, help="rome/memit/kme+weights: WikiText-2 windows for C (default 4,000)."
    ),
    jobs: int | None = typer.Option(
        None,
        min=1,
        help="all: runs at once, each pinned to its share of the CPUs (default: one per CPU).",
    ),
    references: Path | None = typer.Option(
        None,
        help="ike/kme: the JSON of a --method none run of these cases; its unedited answers "
        "are reused, asked again on every 4th case only (latency, and a check).",
    ),
) -> None:
    """Evaluate a method on CounterFact, zsRE (evaluation splits) or MQuAKE (multi-hop:
    the unedited model, MeLLo, or the graph walk), greedy decoding; ``all`` runs every
    method on every dataset it applies to and regenerates REPORT.md; ``scalability`` /
    ``retainability`` measure the kme route against the number of edits stored."""
    import tempfile

    from tqdm import tqdm

    if dataset == "all":
        from kme_rag.bench.run_all import bench_all

        names = tuple(s for s in (only or "").split(",") if s)
        settings = _settings(ctx)
        report = bench_all(
            settings, results, quick=quick, only=names, report_only=report_only, jobs=jobs
        )
        typer.echo(f"wrote {report}")
        return
    if out is None:
        raise ValidationError(f"expected --out FILE.json for bench {dataset}")
    if dataset in ("scalability", "retainability"):
        from kme_rag.bench.curve_runs import bench_curve
        from kme_rag.bench.curves import CurveParams

        if not sizes:
            raise ValidationError(f"expected --sizes for {dataset}, e.g. 1,10,100")
        try:
            steps = tuple(int(s) for s in sizes.split(","))
        except ValueError:
            raise ValidationError(f"expected comma-separated integers, got {sizes!r}") from None
        _check_choice("method", method, ("kme", "rome", "memit"))
        curve = CurveParams(sizes=steps, probe_n=probe_n, max_tokens=max_tokens)
        kind = cast(Literal["scalability", "retainability"], dataset)
        how = cast(Literal["kme", "rome", "memit"], method)
        weights = _scratch_weights(_settings(ctx), stats_samples) if how != "kme" else None
        summary = bench_curve(_settings(ctx), kind, curve, out, provenance(), how, weights)
        _echo_json([{k: v for k, v in p.items() if k != "add_seconds"} for p in summary["points"]])
        return

    from kme_rag.backends import make_backend
    from kme_rag.bench.harness import (
        Dataset,
        Method,
        StoredReferences,
        build_editor,
        load_cases,
        run_cases,
        summarise,
    )

    _check_choice("dataset", dataset, ("counterfact", "zsre", "mquake"))
    if references is not None and (dataset == "mquake" or method not in ("ike", "kme")):
        raise ValidationError("expected --references with counterfact or zsre, --method ike/kme")
    if dataset == "mquake":
        _check_choice("method", method, ("none", "mello", "kme", "kme+weights"))
        _check_choice("edits", edits, ("one", "all"))
        mode = cast(Literal["one", "all"], edits)
        _bench_mquake(_settings(ctx), method, n, mode, out, data, known_facts, stats_samples)
        return
    _check_choice("method", method, ("none", "ike", "kme", "rome", "memit", "kme+weights"))
    _check_choice("edits", edits, ("one", "all"))
    _check_choice("scope", scope, ("classifier", "similarity"))
    settings = _settings(ctx)
    if method == "kme+weights":
        from kme_rag.bench.memory_weights import bench_consolidated

        if edits != "all":
            raise ValidationError("expected --edits all with --method kme+weights")
        cases = load_cases(cast(Dataset, dataset), settings.data_dir, n, data)
        weights = _scratch_weights(settings, stats_samples)
        summary = bench_consolidated(
            settings, dataset, cases, out, provenance(), max_tokens, weights, generate_n
        )
        _echo_json({k: summary[k] for k in ("metrics", "edit_seconds")})
        return
    if method in ("rome", "memit"):
        from kme_rag.bench.weights import WeightBenchParams

        params = WeightBenchParams(
            method=cast(Literal["rome", "memit"], method),
            edits_mode=cast(Literal["one", "all"], edits),
            max_tokens=max_tokens,
            generate_n=generate_n,
            checkpoint_every=checkpoint_every,
        )
        cases = load_cases(cast(Dataset, dataset), settings.data_dir, n, data)
        _bench_weights(_scratch_weights(settings, stats_samples), dataset, cases, params, out)
        return
    cases = load_cases(cast(Dataset, dataset), settings.data_dir, n, data)
    backend = make_backend(settings)
    stored = None
    if references is not None:
        stored = StoredReferences.load(
            references, dataset=dataset, model=backend.name, max_tokens=max_tokens
        )
    store = Path(tempfile.mkdtemp(prefix="kme-bench-"))
    memory = EditMemory.open(settings.model_copy(update={"store": store, "chroma_url": None}))
    editor = build_editor(
        cast(Method, method),
        backend,
        memory,
        settings.data_dir,
        max_tokens=max_tokens,
        ike_demos=ike_demos,
        scope=cast(Literal["classifier", "similarity"], scope),
    )
    rows = []
    cases_path = out.with_suffix(".cases.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    with cases_path.open("w") as fh, tqdm(total=len(cases), unit="case", file=sys.stderr) as bar:
        for row in run_cases(
            cases,
            backend,
            memory,
            editor,
            edits_mode=cast(Literal["one", "all"], edits),
            max_tokens=max_tokens,
            stored=stored,
        ):
            rows.append(row)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            bar.update(1)
    summary = {
        "dataset": dataset,
        "method": method,
        "scope": scope if method == "kme" else None,
        "model": backend.name,
        "n": len(rows),
        "edits_mode": edits,
        "max_tokens": max_tokens,
        **summarise(rows),
        "references": None if stored is None else stored.summary(),
        **provenance(),
        "cases_file": cases_path.name,
    }
    out.write_text(json.dumps(summary, indent=2) + "\n")
    _echo_json({k: summary[k] for k in ("metrics", "latency_ms", "prompt_tokens_per_question")})
