"""Edit-memory speed: import rate, search latency and open time with 10,000 edits.

    .venv/bin/python benchmarks/experiments/memory_bench.py [--n 10000] [--queries 500] \
        [--out DIR]

Imports the first N records of CounterFact's evaluation split into a fresh embedded
store, times each search query (embedding included) with the records' paraphrases as
queries, and times opening the store (graph rebuilt) both in-process and from a cold
process. Writes ``memory-<date>.json`` and ``memory-<date>.md`` under ``--out``.

Measured 2026-11-25: ``results/memory-2026-11-25.{json,md}`` (``results/2026-11-25/NOTES.md``);
``make bench-memory`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from kme_rag.memory.embedder import MiniLMEmbedder
from kme_rag.memory.formats import read_edits
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OPEN_SNIPPET = """
import sys, time
start = time.perf_counter()
from kme_rag.memory.store import EditMemory
from kme_rag.settings import Settings
memory = EditMemory.open(Settings(store=sys.argv[1]))
print(time.perf_counter() - start, len(memory.graph))
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine() -> dict[str, object]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "chromadb": version("chromadb"),
        "onnxruntime": version("onnxruntime"),
    }


def bench(data: Path, n: int, queries: int, repeats: int) -> dict[str, object]:
    records = json.loads(data.read_text())[:n]
    edits = read_edits(data, "counterfact", limit=n)
    folder = Path(tempfile.mkdtemp(prefix="kme-bench-"))
    settings = Settings(store=folder)
    embedder = MiniLMEmbedder(cache_dir=settings.cache_dir)

    start = time.perf_counter()
    embedder.embed(["warm up"])
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    embedder.embed([e.statement for e in edits[:2000]])
    embed_rate = 2000 / (time.perf_counter() - start)

    memory = EditMemory.open(settings, embedder=embedder)
    start = time.perf_counter()
    memory.add_many(edits)
    import_s = time.perf_counter() - start
    active = len(memory)  # below n: records re-editing a (subject, relation) supersede

    asked = [r["rephrase_prompt"] for r in records[:queries]]
    for question in asked[:20]:  # warm the HNSW index and the session
        memory.search(question, k=5)
    latencies, top1, top5 = [], 0, 0
    for record, question in zip(records[:queries], asked, strict=True):
        start = time.perf_counter()
        hits = memory.search(question, k=5)
        latencies.append((time.perf_counter() - start) * 1000)
        sources = [h.edit.source.rsplit("#", 1)[1] for h in hits]
        top1 += sources[0] == str(record["case_id"])
        top5 += str(record["case_id"]) in sources

    in_process = []
    for _ in range(repeats):
        start = time.perf_counter()
        reopened = EditMemory.open(settings, embedder=embedder)
        in_process.append(time.perf_counter() - start)
        assert len(reopened.graph) == active
    cold = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", OPEN_SNIPPET, str(folder)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert int(out[1]) == active
        cold.append(float(out[0]))

    return {
        "n_edits": n,
        "active_after_supersede": active,
        "embedder_load_s": round(load_s, 2),
        "embed_only_per_s": round(embed_rate, 1),
        "import": {"seconds": round(import_s, 2), "edits_per_s": round(n / import_s, 1)},
        "search": {
            "queries": len(latencies),
            "k": 5,
            "p50_ms": round(percentile(latencies, 0.5), 2),
            "p95_ms": round(percentile(latencies, 0.95), 2),
            "paraphrase_recall_at_1": round(top1 / len(latencies), 4),
            "paraphrase_recall_at_5": round(top5 / len(latencies), 4),
        },
        "open": {
            "repeats": repeats,
            "in_process_median_s": round(statistics.median(in_process), 3),
            "cold_process_median_s": round(statistics.median(cold), 3),
        },
    }


def markdown(result: dict[str, object]) -> str:
    r: dict[str, dict[str, float]] = result["results"]  # type: ignore[assignment]
    imp, search, opened = r["import"], r["search"], r["open"]
    rows = [
        ("Import CounterFact records", f"{imp['edits_per_s']} edits/s", "≥ 200 edits/s"),
        ("Search p50 (embedding included)", f"{search['p50_ms']} ms", "≤ 15 ms"),
        ("Search p95", f"{search['p95_ms']} ms", "≤ 40 ms"),
        ("Open store, graph rebuilt (in process)", f"{opened['in_process_median_s']} s", "≤ 5 s"),
        (
            "Open store from a cold process (imports included)",
            f"{opened['cold_process_median_s']} s",
            "≤ 5 s",
        ),
        (
            "Paraphrase → its edit, recall@1 / @5",
            f"{search['paraphrase_recall_at_1']} / {search['paraphrase_recall_at_5']}",
            "-",
        ),
    ]
    lines = [
        f"# Edit-memory speed, {r['n_edits']} edits",
        "",
        f"- command: `{result['command']}`",
        f"- date: {result['date']}",
        f"- machine: {json.dumps(result['machine'])}",
        "",
        "| measure | value | target |",
        "|---|---:|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"Embedding alone: {r['embed_only_per_s']} statements/s; first load "
        f"{r['embedder_load_s']} s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("KME_DATA_DIR", ROOT.parent / "shared" / "data"))
    parser.add_argument(
        "--data", type=Path, default=default_data / "counterfact" / "counterfact-edit.json"
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"data file not found: {args.data} (set KME_DATA_DIR or pass --data)")

    result = {
        "benchmark": "memory",
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "results": bench(args.data, args.n, args.queries, args.repeats),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"memory-{datetime.now(UTC):%Y-%m-%d}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
