"""``kme whitebox …``: trace, statistics, write edits into the weights, undo, export GGUF.

Every command loads the local model the settings name (``KME_MODEL_PATH``, default the
bundled Gemma 3 270M, converted once and cached) and reapplies the weight edits stored for
it, so the commands compose across processes::

    kme whitebox apply                  # consolidate all active structured edits (ROME)
    kme whitebox apply ID ID --method memit
    kme whitebox list | kme whitebox undo
    kme whitebox ask "Where is the Eiffel Tower?"
    kme whitebox export edited.gguf     # llama.cpp then serves the edited weights
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import typer

from kme_rag.errors import ValidationError
from kme_rag.settings import Settings

__all__ = ["whitebox_app"]

whitebox_app = typer.Typer(
    help="Write edits into local weights (ROME / MEMIT), trace, undo, export GGUF.",
    no_args_is_help=True,
)


def _settings(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    return root.obj["settings"]  # type: ignore[no-any-return]


def _open(ctx: typer.Context, samples: int | None = None, identity: bool = False) -> Any:
    """The settings' model with its stored weight edits reapplied; ``samples`` / ``identity``
    choose how C is estimated for new edits (default: 4,000 WikiText-2 windows)."""
    import torch

    from kme_rag.whitebox.second_moments import StatsParams
    from kme_rag.whitebox.session import WeightEditor, WeightEditParams

    settings = _settings(ctx)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    stats = StatsParams(mode="identity" if identity else "corpus")
    if samples is not None:
        stats = StatsParams(mode=stats.mode, samples=samples)
    return WeightEditor.open(settings, params=WeightEditParams(stats=stats))


SAMPLES = typer.Option(None, help="WikiText-2 windows for C (default 4,000; cached per count).")
IDENTITY = typer.Option(False, "--identity-stats", help="C = I: no statistics (labelled mode).")


@whitebox_app.command("trace")
def trace(
    ctx: typer.Context,
    prompt: str = typer.Argument(..., help='e.g. "The Eiffel Tower is located in the city of"'),
    subject: str = typer.Option(..., help="The subject, as it appears in the prompt."),
    samples: int = typer.Option(10, help="Noise samples."),
    window: int = typer.Option(1, help="MLP layers restored together around each layer."),
    plot: Path | None = typer.Option(None, help="Also draw the effects into this PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Causal tracing: the indirect effect of each layer's state on the answer."""
    from kme_rag.whitebox.loading import load_from_settings
    from kme_rag.whitebox.tracing import TraceParams, render_trace, trace_prompt

    loaded = load_from_settings(_settings(ctx))
    params = TraceParams(samples=samples, window=window)
    result = trace_prompt(loaded.model, loaded.tokenizer, prompt, subject, params)
    answer = loaded.tokenizer.decode([result.answer])
    if plot is not None:
        from kme_rag.whitebox.plots import plot_trace

        plot_trace(result, f"{prompt} → {answer!r}", plot)
    if as_json:
        data = {
            "prompt": prompt,
            "subject": subject,
            "answer": answer,
            "clean": result.clean,
            "corrupted": result.corrupted,
            "block_effect": result.effects("layer"),
            "mlp_effect": result.effects("mlp"),
            "peak_mlp_layer": result.peak("mlp"),
        }
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"answer {answer!r}")
    typer.echo(render_trace(result))
    typer.echo(f"peak MLP layer: {result.peak('mlp')}")


@whitebox_app.command("stats")
def stats(
    ctx: typer.Context,
    layers: str = typer.Option("", help="Comma-separated layers; default: ROME's and MEMIT's."),
    samples: int | None = SAMPLES,
) -> None:
    """Compute (once) and cache the second-moment statistics C of the edit layers."""
    weights = _open(ctx, samples)
    chosen = (
        [int(x) for x in layers.split(",") if x.strip()]
        if layers
        else sorted({weights.rome_params().layer, *weights.memit_params().layers})
    )
    import time

    start = time.perf_counter()
    moments = weights.second_moments(chosen, progress=True)
    for layer, moment in moments.items():
        typer.echo(f"layer {layer}: {moment.source}, {moment.tokens} tokens")
    typer.echo(f"{time.perf_counter() - start:.1f} s (cached layers load in about a second)")


@whitebox_app.command("apply")
def apply(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(None, help="Edit ids; none: every active structured edit."),
    method: str = typer.Option("rome", help="rome (one delta per edit) or memit (one batch)."),
    samples: int | None = SAMPLES,
    identity: bool = IDENTITY,
) -> None:
    """Write edits from the memory into the weights ("consolidate memory into weights")."""
    from kme_rag.memory.store import EditMemory

    if method not in ("rome", "memit"):
        raise ValidationError(f"expected method rome or memit, got {method!r}")
    memory = EditMemory.open(_settings(ctx))
    edits = [memory.get(i) for i in ids] if ids else [e for e in memory.edits() if e.structured]
    weights = _open(ctx, samples, identity)
    done = weights.edit_ids()
    todo = [e for e in edits if e.id not in done]
    if not todo:
        typer.echo("nothing to write: every chosen edit is in the weights already")
        return
    for record in weights.write(todo, cast(Any, method), progress=True):
        typer.echo(
            f"{record.id}  {record.method}  {record.seconds:.1f} s  {', '.join(record.edit_ids)}"
        )


@whitebox_app.command("list")
def list_deltas(ctx: typer.Context) -> None:
    """The weight edits applied to the local model, oldest first; edits no longer active
    in the memory (deleted or superseded since) are marked."""
    from kme_rag.memory.store import EditMemory

    active = {e.id for e in EditMemory.open(_settings(ctx)).edits()}
    for record in _open(ctx).records:
        edits = ", ".join(
            i if i in active else f"{i} (not active in memory)" for i in record.edit_ids
        )
        typer.echo(f"{record.id}  {record.method}  {record.created_at}  {edits}")


@whitebox_app.command("undo")
def undo(ctx: typer.Context) -> None:
    """Restore the weights from before the newest weight edit (bit for bit)."""
    record = _open(ctx).undo()
    typer.echo(f"undid {record.id} ({record.method}: {', '.join(record.edit_ids)})")


@whitebox_app.command("ask")
def ask(ctx: typer.Context, question: str = typer.Argument(...)) -> None:
    """Answer from the edited weights alone (no edit memory in the prompt)."""
    typer.echo(_open(ctx).backend.chat([{"role": "user", "content": question}], max_tokens=32))


@whitebox_app.command("export")
def export(
    ctx: typer.Context,
    out: Path = typer.Argument(..., help="The GGUF file to write."),
    tensor_type: str = typer.Option("f32", "--type", help="Edited tensors as f32, f16 or q8_0."),
) -> None:
    """Write the edited model as a GGUF: the source GGUF with the edited tensors replaced."""
    from kme_rag.whitebox.gguf_export import export_gguf

    weights = _open(ctx)
    source = weights.loaded.source
    if source.suffix != ".gguf":
        raise ValidationError(f"GGUF export needs a GGUF source model, got {str(source)!r}")
    paths = sorted({layer.path for r in weights.records for layer in weights.store.load(r).layers})
    written = export_gguf(
        source, weights.loaded.model, paths, out, tensor_type=cast(Any, tensor_type)
    )
    typer.echo(f"wrote {out} ({len(written)} edited tensors: {', '.join(written) or 'none'})")
