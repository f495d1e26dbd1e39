"""``kme bench all``: run the plan, one ``kme bench`` process per run, then the report.

Each run is its own process (``python -m kme_rag bench …``) so that its result JSON
records the command that reproduces it, one run's failure does not stop the others,
and each model is loaded and freed once. The settings travel in the environment (the
``KME_*`` variables). A manifest (``bench-all.json``) records every run's command,
exit status, lane and seconds, and the whole plan's wall time; it is rewritten after
every run (``bench-all-partial.json`` until the plan is done), so an interrupted run
leaves what it finished. A run of some of the plan (``only``) writes its own manifest,
``bench-all-only-<start time>.json``, and leaves the whole plan's manifests alone.

Lanes: ``jobs`` processes run at once, each on its own share of the CPUs (pinned with
``taskset`` where it exists) with that many torch / llama.cpp / embedding threads, each
lane taking the next chain of runs (:func:`kme_rag.bench.plan.chains`) when it is free.
Pinning keeps one lane's threads off the other's cores (unpinned, two processes with a
thread per core each contend for every core).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kme_rag.bench.plan import Run, Size, chains, plan, select
from kme_rag.settings import Settings

__all__ = ["bench_all", "lane_cpus", "manifest_name", "results_folder", "run_one"]

log = logging.getLogger(__name__)


def results_folder(root: Path, quick: bool, today: str | None = None) -> Path:
    """``root/results/<date>`` (``<date>-quick`` for the quick plan)."""
    day = today or datetime.now(UTC).date().isoformat()
    return root / "results" / (f"{day}-quick" if quick else day)


def _environment(settings: Settings) -> dict[str, str]:
    """The process environment plus the data folder the settings resolved."""
    env = dict(os.environ)
    env["KME_DATA_DIR"] = str(settings.data_dir)
    return env


def lane_cpus(jobs: int, cpus: Sequence[int]) -> list[list[int]]:
    """The CPUs of each of ``jobs`` lanes: ``cpus`` dealt out in turn (every lane gets one
    at least; with more lanes than CPUs, lanes share)."""
    if jobs < 1:
        raise ValueError(f"expected jobs >= 1, got {jobs}")
    return [list(cpus[i % len(cpus) :: jobs]) or [cpus[i % len(cpus)]] for i in range(jobs)]


def _lane_environment(env: dict[str, str], cpus: Sequence[int]) -> dict[str, str]:
    threads = str(len(cpus))
    names = ("KME_TORCH_THREADS", "KME_N_THREADS", "KME_N_THREADS_BATCH", "KME_EMBED_THREADS")
    return {**env, **{name: threads for name in names}}


def run_one(
    run: Run, folder: Path, env: dict[str, str], cpus: Sequence[int] | None = None
) -> dict[str, Any]:
    """Run one planned ``kme bench`` command; its JSON goes to ``folder/<name>.json``, and
    ``{folder}`` in its arguments stands for ``folder`` (a file an earlier run of its chain
    wrote). ``cpus``: pin the process to these CPUs (where ``taskset`` exists)."""
    out = folder / f"{run.name}.json"
    args = [a.replace("{folder}", str(folder)) for a in run.args]
    argv = [sys.executable, "-m", "kme_rag", *args, "--out", str(out)]
    taskset = shutil.which("taskset")
    if cpus is not None and taskset:
        argv = [taskset, "-c", ",".join(map(str, cpus)), *argv]
    log.info("running %s", run.name)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        log.error("%s failed (exit %d): %s", run.name, done.returncode, done.stderr[-2000:])
    return {
        "name": run.name,
        "method": run.method,
        "command": " ".join(["kme", *args, "--out", str(out)]),
        "returncode": done.returncode,
        "seconds": round(seconds, 1),
        "cpus": list(cpus) if cpus is not None else None,
        "stderr_tail": done.stderr[-2000:] if done.returncode else "",
    }


def manifest_name(complete: bool, only: Sequence[str] = (), started: str = "") -> str:
    """The manifest's file name: the whole plan's (``bench-all.json``, or
    ``bench-all-partial.json`` while it runs), or a selection's own, named by its start."""
    if only:
        return f"bench-all-only-{started}.json"
    return "bench-all.json" if complete else "bench-all-partial.json"


def _write_manifest(
    folder: Path, name: str, header: dict[str, Any], runs: Sequence[dict[str, Any]], wall: float
) -> None:
    """(Re)write ``folder/name`` atomically: ``header``, the runs so far and the wall time."""
    manifest = {
        **header,
        "runs": list(runs),
        "wall_seconds": round(wall, 1),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count()},
    }
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder / name)


def bench_all(
    settings: Settings,
    root: Path,
    *,
    quick: bool,
    only: tuple[str, ...] = (),
    report_only: bool = False,
    jobs: int | None = None,
) -> Path:
    """Run the plan (or the runs named in ``only``) into ``root/results/<date>[-quick]``
    in ``jobs`` lanes (default: one per CPU this process may use) and regenerate the
    report; returns the report's path."""
    from tqdm import tqdm

    from kme_rag.report.build import write_report

    size: Size = "quick" if quick else "full"
    if report_only:
        return write_report(root)
    runs = select(plan(size), only)  # an unknown name fails before anything is written
    folder = results_folder(root, quick)
    folder.mkdir(parents=True, exist_ok=True)
    env = _environment(settings)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    lanes = lane_cpus(jobs or len(cpus), cpus)
    pending = chains(runs)
    start = time.perf_counter()
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    header = {"kind": "bench-all", "size": size, "only": list(only), "jobs": len(lanes)}
    running = manifest_name(False, only, started)
    done: list[dict[str, Any]] = []
    lock = threading.Lock()
    bar = tqdm(total=len(runs), desc="bench all", unit="run", file=sys.stderr)

    def lane(index: int) -> None:
        lane_env = _lane_environment(env, lanes[index])
        while True:
            with lock:
                if not pending:
                    return
                chain = pending.pop(0)
            for run in chain:
                record = {**run_one(run, folder, lane_env, lanes[index]), "lane": index}
                with lock:
                    done.append(record)
                    bar.update(1)
                    partial = {**header, "complete": False}
                    _write_manifest(folder, running, partial, done, time.perf_counter() - start)

    with bar, ThreadPoolExecutor(len(lanes)) as pool:
        for future in [pool.submit(lane, i) for i in range(len(lanes))]:
            future.result()
    wall = time.perf_counter() - start
    complete = not only
    final = manifest_name(complete, only, started)
    _write_manifest(folder, final, {**header, "complete": complete}, done, wall)
    if complete:
        (folder / running).unlink(missing_ok=True)
    folders = [folder] if quick else None
    name = "REPORT-quick.md" if quick else "REPORT.md"
    return write_report(root, folders=folders, name=name)
