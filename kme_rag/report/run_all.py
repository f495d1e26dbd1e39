"""``kme bench all``: run the plan, one ``kme bench`` process per run, then the report.

Each run is its own process (``python -m kme_rag bench …``) so that its result JSON
records the command that reproduces it, one run's failure does not stop the others,
and each model is loaded and freed once. The settings travel in the environment (the
``KME_*`` variables). A manifest (``bench-all.json``) records every run's command,
exit status and seconds, and the whole plan's wall time.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kme_rag.report.plan import Run, Size, plan, select
from kme_rag.settings import Settings

__all__ = ["bench_all", "results_folder", "run_one"]

log = logging.getLogger(__name__)


def results_folder(root: Path, quick: bool, today: str | None = None) -> Path:
    """``root/results/<date>`` (``<date>-quick`` for the quick plan)."""
    day = today or datetime.now(timezone.utc).date().isoformat()
    return root / "results" / (f"{day}-quick" if quick else day)


def _environment(settings: Settings) -> dict[str, str]:
    """The process environment plus the data folder the settings resolved."""
    env = dict(os.environ)
    env["KME_DATA_DIR"] = str(settings.data_dir)
    return env


def run_one(run: Run, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run one planned ``kme bench`` command; its JSON goes to ``folder/<name>.json``."""
    out = folder / f"{run.name}.json"
    argv = [sys.executable, "-m", "kme_rag", *run.args, "--out", str(out)]
    log.info("running %s", run.name)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        log.error("%s failed (exit %d): %s", run.name, done.returncode, done.stderr[-2000:])
    return {
        "name": run.name,
        "method": run.method,
        "command": " ".join(["kme", *run.args, "--out", str(out)]),
        "returncode": done.returncode,
        "seconds": round(seconds, 1),
        "stderr_tail": done.stderr[-2000:] if done.returncode else "",
    }


def _write_manifest(
    folder: Path, size: Size, runs: Sequence[dict[str, Any]], wall: float, complete: bool
) -> None:
    manifest = {
        "kind": "bench-all",
        "size": size,
        "complete": complete,
        "runs": list(runs),
        "wall_seconds": round(wall, 1),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count()},
    }
    name = "bench-all.json" if complete else "bench-all-partial.json"
    (folder / name).write_text(json.dumps(manifest, indent=2) + "\n")


def bench_all(
    settings: Settings,
    root: Path,
    *,
    quick: bool,
    only: tuple[str, ...] = (),
    report_only: bool = False,
) -> Path:
    """Run the plan (or the runs named in ``only``) into ``root/results/<date>[-quick]``
    and regenerate the report; returns the report's path."""
    from tqdm import tqdm

    from kme_rag.report.build import write_report

    size: Size = "quick" if quick else "full"
    if report_only:
        return write_report(root)
    runs = select(plan(size), only)  # an unknown name fails before anything is written
    folder = results_folder(root, quick)
    folder.mkdir(parents=True, exist_ok=True)
    env = _environment(settings)
    start = time.perf_counter()
    done = []
    with tqdm(runs, desc="bench all", unit="run", file=sys.stderr) as bar:
        for run in bar:
            bar.set_postfix_str(run.name)
            done.append(run_one(run, folder, env))
    _write_manifest(folder, size, done, time.perf_counter() - start, complete=not only)
    folders = [folder] if quick else None
    name = "REPORT-quick.md" if quick else "REPORT.md"
    return write_report(root, folders=folders, name=name)
