"""The ``kme`` command line: manage edits, ask the model, run the demo.

User mistakes print one ``error: ...`` line on stderr and exit 1; no tracebacks.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from kme_rag.bench.cli import bench_app
from kme_rag.editor import KnowledgeEditor
from kme_rag.errors import KmeError, ValidationError
from kme_rag.memory.aliases import subject_names
from kme_rag.memory.edit import Edit, parse_edit
from kme_rag.memory.formats import Format
from kme_rag.memory.store import EditMemory, TextAdded
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
app.add_typer(bench_app, name="bench")


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
    if text is not None and subject is None and relation is None and new is None:
        if old or prompt or subject_alias or target_alias:
            raise ValidationError("--text takes no --old, --prompt or alias options")
        _echo_text_added(_memory(ctx).add_text(text))
        return
    edit = parse_edit({k: v for k, v in fields.items() if v is not None})
    own = (edit.subject, *edit.subject_aliases)
    known = [n for n in subject_names(edit) if n not in own]
    if known:  # what the subject will also be recognised as (countryinfo's spellings)
        typer.echo(f"  also matched as: {', '.join(known)}", err=True)
    if _settings(ctx).weights_policy != "fallback":
        typer.echo(_memory(ctx).add(edit).id)
        return
    check = _editor(ctx).add_edit(edit, paraphrase)
    typer.echo(check.edit.id)
    for text, answer, ok in check.probes:
        typer.echo(f"  {'ok ' if ok else 'MISS'} {text!r} → {answer!r}", err=True)
    if check.written:
        typer.echo("  the in-context route missed: written into the local weights", err=True)


def _echo_text_added(added: TextAdded) -> None:
    """The ids written (stdout) and what was understood (stderr), one fact per line."""
    for edit in added.stored:
        typer.echo(edit.id)
    if not added.understood:
        typer.echo("  no fact understood: stored as a statement (in-context only)", err=True)
    for edit in added.stored if added.understood else ():
        if not edit.structured:
            typer.echo(f"  not understood, kept as a statement: {edit.statement}", err=True)
            continue
        replaced = f"  (supersedes {edit.supersedes})" if edit.supersedes else ""
        typer.echo(
            f"  understood: {edit.subject} | {edit.relation} | {edit.target_new}{replaced}",
            err=True,
        )
    for edit in added.restated:
        typer.echo(f"  already stored: {edit.id}  {edit.statement}", err=True)
    if added.understood:
        typer.echo(
            "  wrong? `kme edit delete <id>` (or `kme edit undo`) and add the triple "
            "with --subject/--relation/--new",
            err=True,
        )


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
    """Import edits from a file, with a progress bar. Re-running an interrupted import
    finishes it: what the first run wrote is skipped, nothing is stored twice."""
    from tqdm import tqdm

    from kme_rag.memory.formats import FORMATS, detect_format, read_edits

    if fmt is not None and fmt not in FORMATS:
        raise ValidationError(f"expected --format to be one of {', '.join(FORMATS)}, got {fmt!r}")
    memory = _memory(ctx)
    kind: Format = fmt if fmt else detect_format(file)
    edits = read_edits(file, kind, limit, keyed=True)  # ids from the file: a re-run resumes
    start = time.perf_counter()
    with tqdm(total=len(edits), unit="edit", file=sys.stderr) as bar:
        done = memory.import_edits(edits, kind, progress=bar.update)
    elapsed = time.perf_counter() - start
    copied = sum(1 for e in done if e.origin and e.namespace != e.origin.split("/", 1)[0])
    skipped = len(edits) - len(done)
    typer.echo(
        f"imported {len(done)} edits in {elapsed:.1f} s"
        + (f" ({copied} copied from another namespace, with new ids)" if copied else "")
        + (f"; {skipped} already in the store (an earlier run), skipped" if skipped else "")
    )


@edit_app.command("export")
def edit_export(ctx: typer.Context, file: Path) -> None:
    """Export every edit of the namespace (all statuses) as JSONL."""
    count = _memory(ctx).export(file)
    typer.echo(f"exported {count} edits to {file}")


def _editor(ctx: typer.Context) -> KnowledgeEditor:
    """The editor ``kme ask`` / ``chat`` use (:meth:`KnowledgeEditor.from_settings`, which
    ``kme bench natural`` evaluates too)."""
    return KnowledgeEditor.from_settings(_settings(ctx), _memory(ctx))


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
    pararel: int = typer.Option(300, help="ParaRel subjects per relation (0: none)."),
    hidden: int = typer.Option(64, help="Hidden units of the MLP (0: logistic regression)."),
    held_out: list[Path] = typer.Option(
        [Path("benchmarks/heldout/natural-v1.jsonl")],
        help="Held-out JSONL sets whose subjects are never trained on (missing files are "
        "an error).",
    ),
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
        TrainParams(seed=seed, pararel=pararel, hidden=hidden),
        held_out=held_out,
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
    from kme_rag.bench.scope_eval import ScopeEvalParams, run_scope_eval

    params = ScopeEvalParams(
        data=data, edits=edits, queries=queries, unrelated=unrelated, k=k, weights=weights
    )
    summary = run_scope_eval(_settings(ctx), params, out)
    if as_json:
        _echo_json(summary)
        return
    for name, row in (("classifier", summary), ("similarity baseline", summary["baseline"])):
        typer.echo(
            f"{name}: recall {row['recall']:.2%}, specificity {row['specificity']:.2%}, "
            f"decision p50 {row['latency_ms']['p50']} ms"
        )


def _require_data(data_dir: Path) -> None:
    if not (data_dir / "counterfact" / "counterfact-train.json").is_file():
        raise ValidationError(
            f"expected the training data under {str(data_dir)!r} (set KME_DATA_DIR)"
        )


def main() -> None:
    """Entry point of the ``kme`` script."""
    import pydantic

    from kme_rag.extras import missing_extra

    try:
        app()
    except KmeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from None
    except ModuleNotFoundError as exc:
        # An optional dependency imported deep inside a command (torch under `kme
        # whitebox`, say): the same one line as require() gives, naming the extra.
        command = " ".join(a for a in sys.argv[1:3] if not a.startswith("-"))
        missing = missing_extra(exc, f"kme {command}".strip())
        if missing is None:
            raise
        typer.echo(f"error: {missing.message}", err=True)
        raise SystemExit(1) from None
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        typer.echo(f"error: invalid setting {where}: {first['msg']}", err=True)
        raise SystemExit(1) from None
