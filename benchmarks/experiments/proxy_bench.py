"""Editing-proxy overhead and throughput with a fast local upstream and 10,000 edits.

    nice -n 19 .venv/bin/python benchmarks/experiments/proxy_bench.py [--edits 10000] \\
        [--queries 200] [--repeats 3] [--clients 8] [--seconds 15] [--store DIR] \\
        [--out benchmarks/results]

Starts, each as a process of its own on loopback: the stub upstream
(``benchmarks/experiments/stub_upstream.py``: fixed answers at once) and the proxy
(``python -m kme_rag.server serve``) on an embedded store holding the first N CounterFact
evaluation records (imported by the store's CounterFact import unless ``--store`` names a
store that already has them). Chat requests only, as a user's client sends them:

- out of scope: zsRE's unrelated ``loc`` questions; in scope: the stored records'
  paraphrase prompts. Which route the proxy took is read from ``x-kme-route`` and
  each request is counted under the route it took.
- latency: one client, keep-alive; each query is sent straight to the stub, then
  through the proxy; the overhead of a query is the difference of the two, so both
  are measured in the same run, moments apart. Percentiles per repeat, then the median
  over repeats.
- throughput: ``--clients`` concurrent clients for ``--seconds``, through the proxy,
  out-of-scope, in-scope and mixed (half each), and straight to the stub for reference.

Writes ``proxy-<date>.json`` and ``proxy-<date>.md`` under ``--out``.

Measured 2026-12-01: ``results/proxy-2026-12-01.{json,md}`` (``results/2026-12-01/NOTES.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from memory_bench import machine as memory_machine
from memory_bench import percentile

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
TARGETS = {"out_p50_ms": 15.0, "in_p50_ms": 30.0, "rps": 50.0}
KINDS = ("direct", "proxy", "overhead", "retrieve", "scope")  # the last two: server-timing


def spread(values: list[float]) -> dict[str, float]:
    return {f"p{int(q * 100)}": percentile(values, q) for q in (0.5, 0.95, 0.99)}


def machine() -> dict[str, Any]:
    """memory_bench's machine description, plus the server stack and this process's nice."""
    return {
        **memory_machine(),
        "fastapi": version("fastapi"),
        "uvicorn": version("uvicorn"),
        "httpx": version("httpx"),
        "niceness": os.nice(0),
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer in {timeout_s} s")


@contextmanager
def process(command: list[str], ready: str, log: Path, env: dict[str, str]) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for(ready, proc)
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def prepare_store(store: Path, n: int) -> float | None:
    """The first ``n`` CounterFact records in the store; seconds the import took (None
    when the store had them already)."""
    from kme_rag.memory.store import EditMemory
    from kme_rag.settings import Settings

    memory = EditMemory.open(Settings(store=store))
    if len(memory) >= n * 0.95:  # CounterFact re-edits some keys: ~1% are superseded
        return None
    start = time.perf_counter()
    memory.import_file(DATA / "counterfact" / "counterfact-edit.json", "counterfact", limit=n)
    return time.perf_counter() - start


def queries(n: int, edits: int) -> tuple[list[str], list[str]]:
    """(out-of-scope, in-scope) questions: zsRE ``loc`` questions, and the paraphrase
    prompts of the stored CounterFact records (spread over all of them)."""
    zsre = json.loads((DATA / "zsre" / "zsre_mend_train-1k.json").read_text())
    out = [r["loc"].removeprefix("nq question: ").strip() + "?" for r in zsre[:n]]
    records = json.loads((DATA / "counterfact" / "counterfact-edit.json").read_text())[:edits]
    step = max(1, len(records) // n)
    within = [r["rephrase_prompt"] for r in records[::step][:n]]
    return out, within


def body(question: str) -> dict[str, Any]:
    return {
        "model": "stub",
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 8,
        "temperature": 0,
    }


def server_timing(header: str) -> dict[str, float]:
    """``retrieve;dur=7.1, scope;dur=4.9`` → {"retrieve": 7.1, "scope": 4.9}."""
    steps = {}
    for part in filter(None, (p.strip() for p in header.split(","))):
        name, _, duration = part.partition(";dur=")
        steps[name] = float(duration)
    return steps


def timed(client: httpx.Client, url: str, question: str) -> tuple[float, str, dict[str, float]]:
    start = time.perf_counter()
    response = client.post(f"{url}/chat/completions", json=body(question))
    elapsed = (time.perf_counter() - start) * 1000
    response.raise_for_status()
    steps = server_timing(response.headers.get("server-timing", ""))
    return elapsed, response.headers.get("x-kme-route", "direct"), steps


def latency_pass(stub: str, proxy: str, asked: list[str]) -> dict[str, Any]:
    """One repeat: each question straight to the stub, then through the proxy."""
    by_route: dict[str, dict[str, list[float]]] = {}
    with httpx.Client(timeout=30) as client:
        for question in asked:
            direct, _, _ = timed(client, stub, question)
            through, route, steps = timed(client, proxy, question)
            rows = by_route.setdefault(route, {k: [] for k in KINDS})
            rows["direct"].append(direct)
            rows["proxy"].append(through)
            rows["overhead"].append(through - direct)
            rows["retrieve"].append(steps.get("retrieve", 0.0))
            rows["scope"].append(steps.get("scope", 0.0))
    return {
        route: {"n": len(rows["proxy"]), **{k: spread(v) for k, v in rows.items()}}
        for route, rows in by_route.items()
    }


async def _client_loop(
    client: httpx.AsyncClient, url: str, asked: list[str], offset: int, stop_at: float
) -> int:
    done = 0
    while time.perf_counter() < stop_at:
        question = asked[(offset + done) % len(asked)]
        response = await client.post(f"{url}/chat/completions", json=body(question))
        response.raise_for_status()
        done += 1
    return done


async def _throughput(url: str, asked: list[str], clients: int, seconds: float) -> float:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = time.perf_counter()
        stop_at = start + seconds
        counts = await asyncio.gather(
            *(_client_loop(client, url, asked, i * 17, stop_at) for i in range(clients))
        )
        return sum(counts) / (time.perf_counter() - start)


def throughput(url: str, asked: list[str], clients: int, seconds: float) -> float:
    return asyncio.run(_throughput(url, asked, clients, seconds))


def median_of(passes: list[dict[str, Any]], route: str) -> dict[str, Any]:
    """Each percentile's median over the repeats."""
    rows = [p[route] for p in passes if route in p]
    if not rows:
        return {}
    out: dict[str, Any] = {"n_per_repeat": [r["n"] for r in rows]}
    for kind in KINDS:
        out[kind] = {q: statistics.median(r[kind][q] for r in rows) for q in ("p50", "p95", "p99")}
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    store = args.store or Path(tempfile.mkdtemp(prefix="kme-proxy-bench-"))
    import_s = prepare_store(store, args.edits)
    out_q, in_q = queries(args.queries, args.edits)
    stub_port, proxy_port = free_port(), free_port()
    stub, proxy = f"http://127.0.0.1:{stub_port}/v1", f"http://127.0.0.1:{proxy_port}/v1"
    env = {**os.environ, "KME_STORE": str(store), "KME_UPSTREAM_FRAMING": "qa"}
    logs = Path(tempfile.mkdtemp(prefix="kme-proxy-logs-"))
    stub_cmd = [sys.executable, str(Path(__file__).resolve().parent / "stub_upstream.py")]
    proxy_cmd = [sys.executable, "-m", "kme_rag.server", "serve", "--port", str(proxy_port)]
    load_before = os.getloadavg()
    with (
        process([*stub_cmd, "--port", str(stub_port)], f"{stub}/models", logs / "stub", env),
        process(
            [*proxy_cmd, "--upstream", stub],
            f"http://127.0.0.1:{proxy_port}/healthz",
            logs / "proxy",
            env,
        ),
    ):
        warm = out_q[:20] + in_q[:20]
        latency_pass(stub, proxy, warm)
        mixed = [q for pair in zip(out_q, in_q, strict=False) for q in pair]
        passes = [latency_pass(stub, proxy, mixed) for _ in range(args.repeats)]
        rps = {
            "direct_to_stub": throughput(stub, mixed, args.clients, args.seconds),
            "out_of_scope": throughput(proxy, out_q, args.clients, args.seconds),
            "in_scope": throughput(proxy, in_q, args.clients, args.seconds),
            "mixed": throughput(proxy, mixed, args.clients, args.seconds),
        }
    routes = sorted({r for p in passes for r in p})
    return {
        "edits": args.edits,
        "import_s": import_s,
        "queries": {"out_of_scope": len(out_q), "in_scope": len(in_q)},
        "repeats": args.repeats,
        "clients": args.clients,
        "seconds": args.seconds,
        "latency_ms": {route: median_of(passes, route) for route in routes},
        "latency_passes": passes,
        "throughput_rps": rps,
        "load_average": {"before": load_before, "after": os.getloadavg()},
    }


def imported(seconds: float | None) -> str:
    if seconds is None:
        return "the store was given, already filled"
    return f"imported through the store's CounterFact import in {seconds:.0f} s"


def loads(values: list[float]) -> str:
    return "/".join(f"{x:.2f}" for x in values)


def verdict(value: float, target: float, *, below: bool) -> str:
    met = value <= target if below else value >= target
    return f"{'met' if met else '**missed**'} ({value:.1f} vs {'≤' if below else '≥'} {target:g})"


def markdown(result: dict[str, Any]) -> str:
    lat = result["latency_ms"]
    lines = [
        f"# Editing proxy: overhead and throughput ({result['date'][:10]})",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"Python {result['machine']['python']}, niceness {result['machine']['niceness']}  ",
        f"Load average (1/5/15 min) before: {loads(result['load_average']['before'])}, "
        f"after: {loads(result['load_average']['after'])}",
        "",
        f"{result['edits']:,} CounterFact edits stored (embedded Chroma; "
        f"{imported(result['import_s'])}); upstream: the stub "
        "(`benchmarks/experiments/stub_upstream.py`, fixed answers), proxy and stub each a "
        "process on loopback; chat requests, in-scope chat framed as a Q/A completion "
        "(`KME_UPSTREAM_FRAMING=qa`).",
        "",
        f"## Latency (one client; ms; median over {result['repeats']} repeats of each percentile)",
        "",
        "| route (x-kme-route) | requests / repeat | direct to stub p50 "
        "| through proxy p50 / p95 / p99 | **overhead p50 / p95 / p99** "
        "| of which retrieve / scope p50 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for route, row in lat.items():
        d, p, o = row["direct"], row["proxy"], row["overhead"]
        lines.append(
            f"| {route} | {row['n_per_repeat'][0]} | {d['p50']:.1f} | "
            f"{p['p50']:.1f} / {p['p95']:.1f} / {p['p99']:.1f} | "
            f"**{o['p50']:.1f} / {o['p95']:.1f} / {o['p99']:.1f}** | "
            f"{row['retrieve']['p50']:.1f} / {row['scope']['p50']:.1f} |"
        )
    rps = result["throughput_rps"]
    lines += [
        "",
        "Overhead of a request = its latency through the proxy minus the same request's "
        "latency straight to the stub, sent just before it.",
        "",
        f"## Throughput ({result['clients']} concurrent clients, {result['seconds']:g} s each)",
        "",
        "| traffic | requests/s |",
        "|---|---:|",
        *(f"| {name.replace('_', ' ')} | {value:.1f} |" for name, value in rps.items()),
        "",
        "## Targets",
        "",
    ]
    if "passthrough" in lat:
        lines.append(
            "- out-of-scope overhead p50 ≤ 15 ms: "
            + verdict(lat["passthrough"]["overhead"]["p50"], TARGETS["out_p50_ms"], below=True)
        )
    if "ike" in lat:
        lines.append(
            "- in-scope overhead p50 ≤ 30 ms: "
            + verdict(lat["ike"]["overhead"]["p50"], TARGETS["in_p50_ms"], below=True)
        )
    lines.append(
        f"- throughput ≥ 50 requests/s with {result['clients']} clients (mixed traffic): "
        + verdict(rps["mixed"], TARGETS["rps"], below=False)
    )
    if max(result["load_average"]["before"][:1] + result["load_average"]["after"][:1]) > 1:
        lines += [
            "",
            "Note: other work was running on the same cores during this run (the load "
            "average above, from before the benchmark started); the stub, the proxy and "
            "the client ran at the niceness shown, so these figures are pessimistic for "
            "an idle machine.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    result = run(args)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **result,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"proxy-{result['date'][:10]}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
