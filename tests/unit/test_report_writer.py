"""REPORT.md from small result JSONs built here: tables, intervals, targets, figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kme_rag.bench import run_all
from kme_rag.bench.plan import METHODS, chains, plan, select
from kme_rag.bench.run_all import lane_cpus, manifest_name
from kme_rag.errors import ValidationError
from kme_rag.report.build import write_report
from kme_rag.report.results import classify, load_results
from kme_rag.settings import Settings


def counts(cases: int, eff: int, gen: int, loc: int) -> dict[str, int]:
    return {
        "cases": cases,
        "efficacy": eff,
        "generality": gen,
        "locality_same": loc,
        "locality_leak": 0,
        "locality_unrelated_cases": cases,
        "locality_unrelated_same": loc,
    }


def single(method: str, date: str, eff: int, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": "counterfact",
        "method": method,
        "scope": "classifier" if method == "kme" else None,
        "n": 500,
        "edits_mode": "all",
        "metrics": {"efficacy": eff / 500},
        "counts": counts(500, eff, 478, 492),
        "latency_ms": {"p50": 150.0, "p95": 470.0},
        "prompt_tokens_per_question": 20.2,
        "command": f"kme bench counterfact --method {method}",
        "date": date,
        **extra,
    }


def point(size: int, eff: int, *, probed: int = 100, **extra: Any) -> dict[str, Any]:
    return {
        "probed": probed,
        "counts": counts(probed, eff, max(eff - 3, 0), probed - 1),
        "latency_ms": {"p50": 120.0, "p95": 400.0},
        "superseded": [],
        "import_seconds": 1.0,
        "edits_stored": size,
        **extra,
    }


def write(folder: Path, name: str, data: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data))


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    old, new = tmp_path / "results" / "2026-11-25", tmp_path / "results" / "2026-12-01"
    write(old, "counterfact-kme.json", single("kme", "2026-11-25T10:00:00", 480))
    write(new, "counterfact-kme.json", single("kme", "2026-12-01T10:00:00", 500))
    write(old, "counterfact-none.json", single("none", "2026-11-25T10:00:00", 7))
    # at 10k, 3 probed edits were superseded by later edits (their misses are right answers)
    active = {"counts": counts(97, 97, 94, 96)}
    scal = [point(1, 1, probed=1), point(100, 100), point(10000, 97, active=active)]
    write(
        new,
        "scalability-kme.json",
        {
            "kind": "scalability",
            "dataset": "counterfact",
            "method": "kme",
            "definition": "first N stored",
            "points": scal,
            "date": "2026-12-01",
        },
    )
    ret = [
        {**point(0, 10, probed=10), "edits_applied": 10, "fixed_probe_set": False},
        {
            **point(0, 50, probed=50),
            "edits_applied": 50,
            "fixed_probe_set": True,
            "add_seconds": [0.03, 0.05],
        },
        {**point(0, 50, probed=50), "edits_applied": 1000, "fixed_probe_set": True},
    ]
    write(
        new,
        "retainability-kme.json",
        {
            "kind": "retainability",
            "dataset": "counterfact",
            "method": "kme",
            "definition": "one at a time",
            "points": ret,
            "date": "2026-12-01",
        },
    )
    rome = [
        {**point(0, 10, probed=10), "edits_applied": 10, "fixed_probe_set": True},
        {**point(0, 4, probed=10), "edits_applied": 200, "fixed_probe_set": True},
    ]
    curve = {"kind": "retainability", "dataset": "counterfact", "method": "rome"}
    write(new, "retainability-rome.json", {**curve, "definition": "", "points": rome})
    write(
        new,
        "counterfact-rome-seq.json",
        {
            "dataset": "counterfact",
            "method": "rome",
            "n": 100,
            "edits_mode": "all",
            "probability": {"efficacy": 0.5, "paraphrase": 0.4, "neighbourhood": 0.7},
            "unedited_probability": {"efficacy": 0.1, "paraphrase": 0.1, "neighbourhood": 0.9},
            "edit_seconds": {"per_edit_p50": 4.5, "per_edit_p95": 6.0, "batch": None},
            "decay": [
                {
                    "edits_applied": 10,
                    "probed": 10,
                    "efficacy": 1.0,
                    "paraphrase": 0.9,
                    "neighbourhood": 0.8,
                },
                {
                    "edits_applied": 100,
                    "probed": 10,
                    "efficacy": 0.6,
                    "paraphrase": 0.5,
                    "neighbourhood": 0.6,
                },
            ],
            "date": "2026-12-01",
        },
    )
    write(new, "scope-1000.json", {"recall": 0.99})  # not a run result: left out
    return tmp_path


def test_report_tables_carry_counts_intervals_and_the_newest_run(root: Path) -> None:
    report = write_report(root).read_text()
    # the newer kme run replaced the older one; its efficacy 500/500 with Wilson bounds
    assert "| kme (classifier scope) | 500 | 100.0% (99.2\u2013100.0) |" in report
    assert "96.0%" not in report.split("## Single-hop: CounterFact")[1].split("##")[0]
    assert "| none | 500 | 1.4% (0.7\u20132.9) |" in report
    assert "scope-1000" not in report


def test_report_states_each_target_with_its_verdict(root: Path) -> None:
    report = write_report(root).read_text()
    # 97/100 at 10k vs 100/100 at 100: 3 points down, 1 over the 2-point target
    assert "efficacy -3.0 points: missed by 1.0 points" in report
    assert "generality -3.0 points: missed by 1.0 points" in report
    assert "locality +0.0 points: met" in report
    adjusted = report.split("2 points (active edits, unrelated locality): ")[1].splitlines()[0]
    assert adjusted.startswith("efficacy +0.0 points: met; generality -0.1 points: met")
    # retainability: 50/50 at 50 and at 1,000 edits -> 0 per edit, met
    assert "retainability >= -0.001 per edit (efficacy, 50 -> 1,000 edits): +0.00000, met" in report
    assert "contrast, memit written into the weights one edit at a time: not measured" in report
    # rome: 10/10 -> 4/10 of the oldest edits between 10 and 200 edits written
    assert "contrast, rome written into the weights one edit at a time: -0.00316 per" in report
    assert "not measured (no complete full run" in report


def test_report_shows_rome_forgetting_for_contrast(root: Path) -> None:
    report = write_report(root).read_text()
    # efficacy 10/10 -> 6/10 over 90 edits: -0.4/90 per edit
    assert "rome (probability), efficacy: -0.00444 per edit" in report


def test_report_draws_every_figure_and_keeps_anchors_apart(root: Path) -> None:
    report = write_report(root).read_text()
    for png in ("scalability", "retainability", "locality-generality"):
        path = root / "report" / f"{png}.png"
        assert path.read_bytes()[:4] == b"\x89PNG"
        assert f"](report/{png}.png)" in report
    anchors = report.split("## Published anchors")[1]
    assert "**Not this project's runs**" in anchors
    assert "| IKE | LLaMA-2-7B | ZsRE (EasyEdit) | 100.00 |" in anchors
    assert "not found" in anchors


def test_cost_row_counts_the_edits_written_and_the_call_size(root: Path) -> None:
    folder = root / "results" / "2026-12-01"
    latency = {"p50": 450.0, "p95": 520.0, "batch_rows": 24}
    written = {"edits_written": 200, "edit_seconds": {"batch": 70.0, "per_edit": 0.35}}
    write(
        folder, "counterfact-kme+weights.json", single("kme+weights", "2026-12-01", 76, **written)
    )
    memit = single("memit", "2026-12-01", 76, latency_ms=latency, edits_mode="all")
    probs = {"efficacy": 0.9, "paraphrase": 0.8, "neighbourhood": 0.7}
    memit.update(probability=probs, unedited_probability=probs, edit_seconds={"batch": 66.0})
    write(folder, "counterfact-memit-all.json", memit)
    cost = write_report(root).read_text().split("## Cost")[1].split("##")[0]
    # kme+weights asked 500 cases of a store whose 200 edits were all written
    assert "| kme+weights | 70 s for 200 edits (one batch)" in cost
    assert "| 450 / 520 (24 per call) |" in cost  # per prompt, decoded 24 at a time


def test_batches_of_other_sizes_and_plan_selections_are_kept_apart(root: Path) -> None:
    folder = root / "results" / "2026-12-01"
    probs = {"efficacy": 0.9, "paraphrase": 0.8, "neighbourhood": 0.7}
    for n in (200, 1000):
        memit = single("memit", f"2026-12-01T1{n // 1000}:00:00", 76, n=n, edits_mode="all")
        memit.update(probability=probs, unedited_probability=probs, edit_seconds={"batch": 6.0})
        write(folder, f"counterfact-memit-{n}.json", memit)
    plan = {"kind": "bench-all", "size": "full", "jobs": 2, "wall_seconds": 9602.0}
    run = {"name": "zsre-none", "seconds": 686.0, "lane": 1}
    write(folder, "bench-all-partial.json", {**plan, "complete": False, "runs": [run]})
    only = {**plan, "only": ["mquake-cf3k-kme"], "date": "2026-12-01T17:00:00"}
    write(folder, "bench-all-only-x.json", {**only, "runs": [{**run, "name": "mquake-cf3k-kme"}]})
    report = write_report(root).read_text()
    assert "| counterfact: memit, one batch of 200 | 200 |" in report
    assert "| counterfact: memit, one batch of 1000 | 1000 |" in report
    assert "- zsre-none: 686 s (lane 1)" in report and "- mquake-cf3k-kme: 686 s" in report


def test_classify_reads_content_not_names() -> None:
    assert classify({"kind": "scalability"}) == "scalability"
    assert classify({"dataset": "mquake:x.json", "metrics": {}}) == "multihop"
    assert classify({"probability": {}, "metrics": {"efficacy": 1}}) == "weights"
    assert classify({"metrics": {"efficacy": 1.0}}) == "single"
    assert classify({"recall": 0.99}) is None


def test_load_results_skips_files_that_are_not_json(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    write(tmp_path, "ok.json", single("kme", "2026-12-01", 500))
    results = load_results([tmp_path], tmp_path)
    assert [r.path for r in results.of("single")] == ["ok.json"]


def test_plans_cover_every_method_at_both_sizes() -> None:
    for size in ("quick", "full"):
        runs = plan(size)  # type: ignore[arg-type]
        assert {r.method for r in runs} == set(METHODS)
        assert len({r.name for r in runs}) == len(runs)  # one result file per run
    full = {r.name: r for r in plan("full")}
    assert "10000" in " ".join(full["scalability-kme"].args)
    assert full["retainability-kme"].args[-3].endswith(",1000")


def test_select_names_unknown_runs() -> None:
    with pytest.raises(ValidationError, match="nonsense"):
        select(plan("quick"), ("nonsense",))
    assert [r.name for r in select(plan("quick"), ("zsre-kme",))] == ["zsre-kme"]


def test_weight_runs_of_a_dataset_form_one_chain_in_method_order() -> None:
    grouped = {tuple(r.name for r in chain) for chain in chains(plan("full"))}
    for dataset in ("counterfact", "zsre"):
        names = (f"{dataset}-rome-one", f"{dataset}-memit-all", f"{dataset}-kme+weights")
        assert names in grouped  # MEMIT and kme+weights reuse ROME's optimised δs
    assert plan("full")[0].chain  # the torch chains come first: the longest
    assert sum(len(c) for c in chains(plan("full"))) == len(plan("full"))


def test_memory_runs_of_a_dataset_form_one_chain_reusing_nones_answers() -> None:
    grouped = {tuple(r.name for r in chain): chain for chain in chains(plan("full"))}
    for dataset in ("counterfact", "zsre"):
        chain = grouped[(f"{dataset}-none", f"{dataset}-ike", f"{dataset}-kme")]
        assert "--references" not in chain[0].args
        for run in chain[1:]:
            at = run.args.index("--references")
            assert run.args[at + 1] == f"{{folder}}/{dataset}-none.json"


def test_a_run_names_the_results_folder_in_its_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    seen: list[list[str]] = []

    def fake(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(run_all.subprocess, "run", fake)
    run = next(r for r in plan("full") if r.name == "zsre-kme")
    record = run_all.run_one(run, tmp_path, {})
    assert f"{tmp_path}/zsre-none.json" in seen[0] and "{folder}" not in " ".join(seen[0])
    assert f"--references {tmp_path}/zsre-none.json" in record["command"]


def test_lanes_deal_out_the_cpus() -> None:
    assert lane_cpus(2, [0, 1]) == [[0], [1]]
    assert lane_cpus(1, [0, 1, 2, 3]) == [[0, 1, 2, 3]]
    assert lane_cpus(2, [0, 1, 2]) == [[0, 2], [1]]
    assert lane_cpus(3, [4, 5]) == [[4], [5], [4]]  # more lanes than CPUs: they share
    with pytest.raises(ValueError):
        lane_cpus(0, [0])


def test_a_selection_writes_its_own_manifest_and_keeps_the_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert manifest_name(True) == "bench-all.json"
    assert manifest_name(False) == "bench-all-partial.json"
    assert manifest_name(False, ("zsre-none",), "20261201T150000") == (
        "bench-all-only-20261201T150000.json"
    )
    folder = run_all.results_folder(tmp_path, quick=False)
    folder.mkdir(parents=True)
    plan_manifest = folder / "bench-all-partial.json"
    plan_manifest.write_text('{"kind": "bench-all", "runs": []}')
    ran: list[str] = []

    def run_one(run: Any, out: Path, env: Any, cpus: Any = None) -> dict[str, Any]:
        ran.append(run.name)  # the runs themselves: tests/integration/test_report_bench_all.py
        return {"name": run.name, "method": run.method, "returncode": 0, "seconds": 1.0}

    monkeypatch.setattr(run_all, "run_one", run_one)
    names = ("zsre-none", "mquake-cf3k-kme")
    run_all.bench_all(Settings(), tmp_path, quick=False, only=names, jobs=1)

    assert sorted(ran) == sorted(names)
    assert plan_manifest.read_text() == '{"kind": "bench-all", "runs": []}'
    (own,) = folder.glob("bench-all-only-*.json")
    manifest = json.loads(own.read_text())
    assert manifest["only"] == list(names) and not manifest["complete"]
    assert [r["name"] for r in manifest["runs"]] == ran


def test_the_conversation_set_gets_its_own_section_from_the_newest_run(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "2026-12-03"
    figure = {"rate": 0.75, "low": 0.5, "high": 0.9, "k": 3, "n": 4}
    base = {"kind": "conversations", "dataset": "multihop-v1.jsonl", "method": "kme"}
    latency = {"passthrough_p50": 110.0, "passthrough_unedited_p50": 100.0}
    latency |= {"passthrough_ratio_p50": 1.1, "passthrough_n": 5}
    newer = {**base, "date": "2026-12-03T12:00:00", "latency_ms": latency}
    write(folder, "conversations-new.json", {**newer, "figures": {"hop1_known": figure}})
    older = {**base, "date": "2026-12-02T12:00:00", "figures": {"hop1_known": {**figure, "k": 1}}}
    write(folder, "conversations-old.json", older)
    report = write_report(tmp_path).read_text()
    section = report.split("## Held-out two-hop and follow-up questions")[1].split("\n## ")[0]
    assert "| two-hop, edit on hop 1 (other hop known) | 75.0% (" in section  # 3 of 4
    assert "conversations-new.json" in section and "conversations-old.json" not in section
    assert "110 / 100 (1.10x, n=5)" in section


def test_the_mquake_row_splits_cases_by_the_edited_hop(tmp_path: Path) -> None:
    metrics = {
        "multihop_accuracy": 0.5,
        "question_accuracy": 0.25,
        "prior_baseline": 0.4,
        "known_hops_accuracy": 0.75,
        "known_hops_cases": 4,
        "accuracy_by_edited_hop": {
            "first": {"accuracy": 0.6, "cases": 5},
            "later_only": {"accuracy": 0.2, "cases": 5},
        },
    }
    run = {"dataset": "mquake:cf3k.json", "method": "kme", "path": "editor (as kme ask)", "n": 10}
    write(tmp_path / "results" / "2026-12-04", "mquake.json", {**run, "metrics": metrics})
    report = write_report(tmp_path).read_text()
    section = report.split("## Portability: MQuAKE multi-hop")[1].split("\n## ")[0]
    assert "edit on hop 1 / later hops only (cases)" in section
    assert "| 60.0% (5) / 20.0% (5) |" in section
