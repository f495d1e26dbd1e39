"""Which runs ``kme bench all`` makes: every method on every dataset it applies to.

A run is the argument list of one ``kme bench`` command (without ``--out``), so each
result JSON records a command that reproduces it alone. Two sizes: ``full`` (the
figures of the report) and ``quick`` (a few cases per run, for CI: it checks the
pipeline end to end, not the figures).

Runs of one ``chain`` run one after another, in plan order: ROME, then MEMIT, then
``kme+weights`` on the same dataset write the same edits on the same layer, so the later
ones read the target δs the first optimised from the target cache
(:mod:`kme_rag.whitebox.targetcache`); ``none``, then ``ike``, then ``kme`` on the same
dataset ask the same unedited questions, so the later two read the unedited answers back
from the first's result (``--references``; asked again on every 4th case). An argument
``{folder}`` stands for the results folder of the run.

Chains are independent of each other. The plan lists the torch chains first, then the
llama.cpp ones, each group longest first (seconds from the 2026-12-01 runs,
``benchmarks/results/2026-12-01/``), and each free lane takes the next: both lanes run torch
beside torch, then llama.cpp beside llama.cpp (a torch process beside a llama.cpp one slowed
both by a quarter to a half there), and no long chain starts last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kme_rag.errors import ValidationError

__all__ = ["METHODS", "Run", "Size", "chains", "plan", "select"]

Size = Literal["quick", "full"]
METHODS = ("none", "ike", "kme", "walker", "mello", "rome", "memit", "kme+weights")


@dataclass(frozen=True)
class Run:
    """One ``kme bench`` command: ``name`` is also the result file's stem."""

    name: str
    method: str
    args: tuple[str, ...]
    chain: str = ""  # runs sharing a chain run in order, in one lane (empty: its own)

    @property
    def lane_key(self) -> str:
        return self.chain or self.name


@dataclass(frozen=True)
class _Sizes:
    single: int  # CounterFact / zsRE cases for the memory methods
    ike_zsre: int
    weights: int  # ROME / MEMIT / kme+weights cases on CounterFact
    weights_zsre: int  # … on zsRE
    generate: int  # of which with the generation metrics
    mquake: int
    mello: int
    mquake_weights: int  # kme+weights on MQuAKE: MEMIT of their edits, the walk on torch
    scalability: str
    scalability_probe: int
    retainability: str
    retainability_probe: int
    weights_retainability: str  # checkpoints of sequential ROME / MEMIT
    weights_retainability_probe: int
    weights_datasets: tuple[str, ...]  # ROME / MEMIT / kme+weights load torch: costly
    stats_samples: int | None  # WikiText-2 windows for C (None: the default, 4,000)


SIZES: dict[Size, _Sizes] = {
    # quick: C from 64 windows (seconds, not the default's ~10 minutes on a fresh machine)
    "quick": _Sizes(3, 2, 2, 2, 2, 2, 1, 1, "1,5", 3, "1,3,5", 3, "1,2", 2, ("counterfact",), 64),
    # sized for <= 2.5 hours on 2 cores in 2 lanes, so that the whole plan fits a 3-hour
    # window on a fresh machine with margin: one torch edit costs ~10-17 s and one torch
    # generation ~1.7 s per probe there; ROME / MEMIT one edit after another, the longest
    # runs, go to 50 edits (locality 0.0-0.05 there already: benchmarks/results/2026-12-01)
    "full": _Sizes(
        single=500,
        ike_zsre=100,
        weights=150,
        weights_zsre=40,
        generate=75,
        mquake=354,
        mello=50,
        mquake_weights=50,
        scalability="1,10,100,1000,10000",
        scalability_probe=100,
        retainability="1,10,50,100,250,500,1000",
        retainability_probe=50,
        weights_retainability="1,10,25,50",
        weights_retainability_probe=20,
        weights_datasets=("counterfact", "zsre"),
        stats_samples=None,
    ),
}


def _stats(size: _Sizes) -> tuple[str, ...]:
    return () if size.stats_samples is None else ("--stats-samples", str(size.stats_samples))


def _single(dataset: str, method: str, n: int, edits: str = "all", *extra: str) -> Run:
    args = ("bench", dataset, "--method", method, "--n", str(n), "--edits", edits, *extra)
    suffix = {"rome": "-one", "memit": "-all"}.get(method, "")
    return Run(f"{dataset}-{method}{suffix}", method, args)


def _memory(dataset: str, size: _Sizes) -> list[Run]:
    """none, ike and kme on ``dataset``, one chain: the last two reuse none's answers."""
    n_ike = size.single if dataset == "counterfact" else size.ike_zsre
    none = _single(dataset, "none", size.single)
    refs = ("--references", f"{{folder}}/{none.name}.json")
    runs = [none, _single(dataset, "ike", n_ike, "all", *refs)]
    runs.append(_single(dataset, "kme", size.single, "all", *refs))
    return [Run(r.name, r.method, r.args, f"{dataset}-memory") for r in runs]


def _weights(dataset: str, size: _Sizes) -> list[Run]:
    n = size.weights if dataset == "counterfact" else size.weights_zsre
    generate = ("--generate-n", str(min(n, size.generate)), *_stats(size))
    rome = _single(dataset, "rome", n, "one")
    memit = _single(dataset, "memit", n, "all")
    both = _single(dataset, "kme+weights", n, "all")
    chain = f"{dataset}-weights"
    return [Run(r.name, r.method, r.args + generate, chain) for r in (rome, memit, both)]


def _mquake(size: _Sizes) -> dict[str, Run]:
    def run(method: str, n: int, *extra: str) -> Run:
        args = ("bench", "mquake", "--method", method, "--n", str(n), "--edits", "all", *extra)
        return Run(f"mquake-cf3k-{method}", method, args)

    return {
        "none": run("none", size.mquake),
        "mello": run("mello", size.mello),
        "kme": run("kme", size.mquake),  # as kme ask answers
        "walker": run("walker", size.mquake),  # the walk alone: a diagnostic beside it
        "kme+weights": run("kme+weights", size.mquake_weights, *_stats(size)),
    }


def _curve(kind: str, method: str, sizes: str, probe_n: int, *extra: str) -> Run:
    args = ("bench", kind, "--method", method, "--sizes", sizes, "--probe-n", str(probe_n))
    return Run(f"{kind}-{method}", method, args + extra)


def plan(size: Size) -> list[Run]:
    """Every run of ``bench all`` at ``size``: the torch chains, then the others, each
    group longest first by its expected seconds (the 2026-12-01 runs', scaled to this
    plan's sizes; the memory chains' estimated with the reuse, beside like runs)."""
    s = SIZES[size]
    weights = {
        d: _weights(d, s) if d in s.weights_datasets else [] for d in ("counterfact", "zsre")
    }
    checkpoints, probe = s.weights_retainability, s.weights_retainability_probe
    retain = {
        m: _curve("retainability", m, checkpoints, probe, *_stats(s)) for m in ("rome", "memit")
    }
    mquake = _mquake(s)
    # torch chains first, then the llama.cpp ones: a torch process beside a llama.cpp one
    # slows both (2026-12-01, memory chains beside the ROME chain: ROME 12.8 s p50 per edit
    # against 10.2 s beside torch runs, IKE answers 828 ms p50 against 483 ms)
    return [  # seconds in the 2026-12-01 runs (weights: at the sizes before this plan's)
        *weights["counterfact"],  # 5,317 s at 200 cases; C computed here on a fresh machine
        *weights["zsre"],  # 2,565 s at 50 cases (C computed here too: same wall either way)
        mquake["kme+weights"],  # ~1,180 s
        retain["memit"],  # 1,442 s to 100 edits
        retain["rome"],  # 1,419 s to 100 edits
        *_memory("counterfact", s),  # ~2,200 s (2,976 s beside the ROME run)
        mquake["kme"],  # 1,638 s (as the walker alone)
        mquake["walker"],  # 1,638 s
        *_memory("zsre", s),  # ~1,560 s (2,040 s beside MQuAKE kme)
        mquake["none"],  # 635 s
        mquake["mello"],  # 606 s
        _curve("scalability", "kme", s.scalability, s.scalability_probe),  # 443 s
        _curve("retainability", "kme", s.retainability, s.retainability_probe),  # 327 s
    ]


def select(runs: list[Run], names: tuple[str, ...]) -> list[Run]:
    """The runs named (all when ``names`` is empty); an unknown name is an error that
    lists the known ones."""
    if not names:
        return runs
    known = {r.name for r in runs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValidationError(f"expected run names among {sorted(known)}, got {unknown}")
    return [r for r in runs if r.name in names]


def chains(runs: list[Run]) -> list[list[Run]]:
    """``runs`` grouped by chain, in order of each chain's first run."""
    grouped: dict[str, list[Run]] = {}
    for run in runs:
        grouped.setdefault(run.lane_key, []).append(run)
    return list(grouped.values())
