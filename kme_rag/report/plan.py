"""Which runs ``kme bench all`` makes: every method on every dataset it applies to.

A run is the argument list of one ``kme bench`` command (without ``--out``), so each
result JSON records a command that reproduces it alone. Two sizes: ``full`` (the
figures of the report) and ``quick`` (a few cases per run, for CI: it checks the
pipeline end to end, not the figures).

Runs of one ``chain`` run one after another, in plan order: ROME, then MEMIT, then
``kme+weights`` on the same dataset write the same edits on the same layer, so the later
ones read the target δs the first optimised from the target cache
(:mod:`kme_rag.whitebox.targetcache`). Chains are independent of each other, and the
plan lists the costly (torch) ones first, so that parallel lanes start with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kme_rag.errors import ValidationError

__all__ = ["METHODS", "Run", "Size", "chains", "plan", "select"]

Size = Literal["quick", "full"]
METHODS = ("none", "ike", "kme", "mello", "rome", "memit", "kme+weights")


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
    # sized for <= 3 hours on 2 cores in 2 lanes: one torch edit costs ~12-17 s and one
    # torch generation ~1.5 s per probe there (benchmarks/results/2026-12-01)
    "full": _Sizes(
        single=500,
        ike_zsre=100,
        weights=200,
        weights_zsre=50,
        generate=100,
        mquake=354,
        mello=50,
        mquake_weights=50,
        scalability="1,10,100,1000,10000",
        scalability_probe=100,
        retainability="1,10,50,100,250,500,1000",
        retainability_probe=50,
        weights_retainability="1,10,50,100",
        weights_retainability_probe=20,
        weights_datasets=("counterfact", "zsre"),
        stats_samples=None,
    ),
}


def _stats(size: _Sizes) -> tuple[str, ...]:
    return () if size.stats_samples is None else ("--stats-samples", str(size.stats_samples))


def _single(dataset: str, method: str, n: int, edits: str = "all") -> Run:
    args = ("bench", dataset, "--method", method, "--n", str(n), "--edits", edits)
    suffix = {"rome": "-one", "memit": "-all"}.get(method, "")
    return Run(f"{dataset}-{method}{suffix}", method, args)


def _weights(dataset: str, size: _Sizes) -> list[Run]:
    n = size.weights if dataset == "counterfact" else size.weights_zsre
    generate = ("--generate-n", str(min(n, size.generate)), *_stats(size))
    rome = _single(dataset, "rome", n, "one")
    memit = _single(dataset, "memit", n, "all")
    both = _single(dataset, "kme+weights", n, "all")
    chain = f"{dataset}-weights"
    return [Run(r.name, r.method, r.args + generate, chain) for r in (rome, memit, both)]


def _mquake(size: _Sizes) -> list[Run]:
    def run(method: str, n: int, *extra: str) -> Run:
        args = ("bench", "mquake", "--method", method, "--n", str(n), "--edits", "all", *extra)
        return Run(f"mquake-cf3k-{method}", method, args)

    return [
        run("none", size.mquake),
        run("mello", size.mello),
        run("kme", size.mquake),
        run("kme+weights", size.mquake_weights, *_stats(size)),
    ]


def _curve(kind: str, method: str, sizes: str, probe_n: int) -> Run:
    args = ("bench", kind, "--method", method, "--sizes", sizes, "--probe-n", str(probe_n))
    return Run(f"{kind}-{method}", method, args)


def _curves(size: _Sizes) -> list[Run]:
    """Retainability of ROME and MEMIT writing edits into the weights one at a time (the
    longer curves, first), then scalability and retainability of the memory route (same
    probes, same metrics)."""
    memory = [
        _curve("scalability", "kme", size.scalability, size.scalability_probe),
        _curve("retainability", "kme", size.retainability, size.retainability_probe),
    ]
    checkpoints, probe = size.weights_retainability, size.weights_retainability_probe
    weights = [_curve("retainability", m, checkpoints, probe) for m in ("rome", "memit")]
    return [Run(r.name, r.method, r.args + _stats(size)) for r in weights] + memory


def plan(size: Size) -> list[Run]:
    """Every run of ``bench all`` at ``size``: the torch chains and the curves first (the
    longest), then the memory methods per dataset, cheapest first, then MQuAKE."""
    s = SIZES[size]
    weights = [
        r for d in ("counterfact", "zsre") if d in s.weights_datasets for r in _weights(d, s)
    ]
    curves = _curves(s)
    runs: list[Run] = [*weights, *curves]  # the curves: long too
    for dataset in ("counterfact", "zsre"):
        n_ike = s.single if dataset == "counterfact" else s.ike_zsre
        runs += [_single(dataset, "none", s.single), _single(dataset, "ike", n_ike)]
        runs.append(_single(dataset, "kme", s.single))
    return runs + _mquake(s)


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
