"""llama.cpp thread settings on this machine: prompt and generation speed of the bundled model.

    .venv/bin/python benchmarks/experiments/llama_threads.py [--repeats 5] [--out DIR]

For each (n_threads, n_threads_batch) setting, evaluates a ~300-token prompt from
scratch and generates 64 tokens, timing each repeat; reports medians in tokens/s.
Writes ``llama-threads-<date>.json`` and ``.md`` under ``--out``.

Measured 2026-11-25: ``results/llama-threads-2026-11-25.{json,md}`` (why llama.cpp
gets all cores by default; ``results/2026-11-25/NOTES.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from llama_cpp import Llama

from kme_rag.backends import bundled_model_path

ROOT = Path(__file__).resolve().parents[2]
PROMPT = " ".join(
    f"Q: What is the capital of country number {i}?\nA: City {i}.\n" for i in range(20)
)
SETTINGS: list[tuple[str, dict[str, int]]] = [
    ("llama.cpp defaults", {}),
    ("n_threads=1, n_threads_batch=1", {"n_threads": 1, "n_threads_batch": 1}),
    ("n_threads=2, n_threads_batch=2", {"n_threads": 2, "n_threads_batch": 2}),
    ("n_threads=1, n_threads_batch=2", {"n_threads": 1, "n_threads_batch": 2}),
]


def measure(threads: dict[str, int], repeats: int) -> dict[str, float]:
    llm = Llama(str(bundled_model_path()), n_ctx=1024, verbose=False, seed=0, **threads)
    n_prompt = len(llm.tokenize(PROMPT.encode()))
    prompt_rates, gen_rates = [], []
    tokens = llm.tokenize(PROMPT.encode())
    for _ in range(repeats):
        llm.reset()
        start = time.perf_counter()
        stream = llm.generate(tokens, temp=0.0, reset=True)
        next(stream)  # the first token needs the whole prompt evaluated
        first = time.perf_counter()
        generated = 1
        for _token in stream:
            generated += 1
            if generated == 64:
                break
        end = time.perf_counter()
        prompt_rates.append(n_prompt / (first - start))
        gen_rates.append((generated - 1) / (end - first))
    return {
        "prompt_tokens": n_prompt,
        "prompt_tok_per_s": round(statistics.median(prompt_rates), 1),
        "generated_tok_per_s": round(statistics.median(gen_rates), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    rows = {name: measure(threads, args.repeats) for name, threads in SETTINGS}
    result = {
        "benchmark": "llama-threads",
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count()},
        "results": rows,
    }
    lines = [
        "# llama.cpp thread settings, bundled Gemma 3 270M (Q4_K_M)",
        "",
        f"- command: `{result['command']}`",
        f"- date: {result['date']}, cores: {os.cpu_count()}, medians of {args.repeats} repeats",
        "",
        "| setting | prompt tok/s | generated tok/s |",
        "|---|---:|---:|",
        *[
            f"| {name} | {r['prompt_tok_per_s']} | {r['generated_tok_per_s']} |"
            for name, r in rows.items()
        ],
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"llama-threads-{datetime.now(UTC):%Y-%m-%d}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
