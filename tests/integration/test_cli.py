"""The ``kme`` command as a user runs it: a real process on a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KME = [sys.executable, "-m", "kme_rag"]


def kme(store: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KME_STORE": str(store)}
    env.pop("KME_CHROMA_URL", None)
    done = subprocess.run([*KME, *args], capture_output=True, text=True, env=env, timeout=300)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_edit_add_says_which_known_aliases_the_subject_is_matched_as(tmp_path: Path) -> None:
    edit = ("--subject", "United Kingdom", "--relation", "capital", "--new", "Manchester")
    added = kme(tmp_path / "store", "edit", "add", *edit, "--subject-alias", "Blighty")
    assert added.stdout.strip().startswith("e_")
    line = next(x for x in added.stderr.splitlines() if "also matched as" in x)
    assert "UK" in line and "Great Britain" in line and "Blighty" not in line


def test_edit_lifecycle_through_the_cli(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = kme(
        store,
        "edit",
        "add",
        "--subject",
        "Japan",
        "--relation",
        "capital",
        "--new",
        "Kyoto",
        "--old",
        "Tokyo",
    ).stdout.strip()
    second = kme(
        store, "edit", "add", "--subject", "Japan", "--relation", "capital", "--new", "Osaka"
    ).stdout.strip()
    text = kme(store, "edit", "add", "--text", "The Louvre moved to Lyon.").stdout.strip()
    assert first.startswith("e_") and second.startswith("e_") and text.startswith("e_")

    listed = json.loads(kme(store, "edit", "list", "--json").stdout)
    assert [e["id"] for e in listed] == [second, text]
    shown = json.loads(kme(store, "edit", "show", second).stdout)
    assert shown["supersedes"] == first and shown["target_new"] == "Osaka"

    history = kme(store, "edit", "history", "--subject", "japan", "--relation", "Capital")
    assert (
        "Kyoto" in history.stdout and "[superseded]" in history.stdout and "Osaka" in history.stdout
    )

    kme(store, "edit", "rm", text)
    assert text not in kme(store, "edit", "list").stdout
    assert "undid delete" in kme(store, "edit", "undo").stdout
    assert text in kme(store, "edit", "list").stdout

    out = tmp_path / "edits.jsonl"
    kme(store, "edit", "export", str(out))
    assert len(out.read_text().splitlines()) == 3
    kme(tmp_path / "copy", "edit", "import", str(out))
    copied = json.loads(kme(tmp_path / "copy", "edit", "list", "--json", "--all").stdout)
    everything = json.loads(kme(store, "edit", "list", "--json", "--all").stdout)
    assert copied == everything


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["edit", "add", "--subject", " ", "--relation", "r", "--new", "o"], "' '"),
        (
            ["edit", "add", "--subject", "s", "--relation", "r", "--new", "o", "--prompt", "x"],
            "exactly one '{}'",
        ),
        (["edit", "show", "e_nope"], "no edit 'e_nope'"),
        (["edit", "undo"], "nothing to undo"),
        (["edit", "import", "/no/such/file.json", "--format", "counterfact"], "cannot read"),
        (["edit", "import", "x.json", "--format", "csv"], "expected --format"),
    ],
)
def test_user_mistakes_print_one_line_and_fail(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = kme(tmp_path / "store", *args, ok=False)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_import_counterfact_with_limit(tmp_path: Path, data_dir: Path) -> None:
    store = tmp_path / "store"
    done = kme(
        store,
        "edit",
        "import",
        str(data_dir / "counterfact" / "counterfact-edit.json"),
        "--limit",
        "30",
    )
    assert "imported 30 edits" in done.stdout
    listed = json.loads(kme(store, "edit", "list", "--json").stdout)
    assert len(listed) == 30 and listed[0]["source"].endswith("counterfact-edit.json#0")
    # Run again with a larger limit (as after a crash): the first 30 are not stored twice.
    file = str(data_dir / "counterfact" / "counterfact-edit.json")
    again = kme(store, "edit", "import", file, "--limit", "40")
    assert "imported 10 edits" in again.stdout and "30 already in the store" in again.stdout
    listed = json.loads(kme(store, "edit", "list", "--json").stdout)
    assert len(listed) == 40 and len({e["change_id"] for e in listed}) == 1


@pytest.mark.slow
def test_ask_json_answers_through_the_editor(tmp_path: Path) -> None:
    store = tmp_path / "store"
    edit_id = kme(
        store,
        "edit",
        "add",
        "--subject",
        "Eiffel Tower",
        "--relation",
        "{} is located in the city of",
        "--new",
        "Rome",
    ).stdout.strip()
    edited = json.loads(kme(store, "ask", "In which city is the Eiffel Tower?", "--json").stdout)
    assert edited["route"] == "ike" and edited["edits"] == [edit_id]
    assert edited["answer"].startswith("Rome") and edited["latency_ms"] > 0
    other = json.loads(kme(store, "ask", "What is the capital of France?", "--json").stdout)
    assert other["route"] == "passthrough" and other["edits"] == [] and "Paris" in other["answer"]


@pytest.mark.slow
def test_bench_mquake_mello_runs_end_to_end_on_the_local_model(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KME_DATA_DIR", str(data_dir))
    out = tmp_path / "mello.json"
    kme(
        tmp_path / "store", "bench", "mquake", "--method", "mello", "--n", "2", "--out", str(out)
    )  # fmt: skip
    summary = json.loads(out.read_text())
    rows = [json.loads(line) for line in out.with_suffix(".cases.jsonl").read_text().splitlines()]
    assert summary["n"] == 2 and len(rows) == 2 and len(rows[0]["questions"]) == 3
    assert set(summary["metrics"]) >= {"multihop_accuracy", "question_accuracy", "prior_baseline"}
    assert 0.0 <= summary["metrics"]["multihop_accuracy"] <= 1.0
    assert summary["mello_checks"]["loop"].startswith("loose")


@pytest.mark.slow
def test_bench_mquake_walks_with_and_without_known_facts_and_through_the_editor(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KME_DATA_DIR", str(data_dir))
    t50 = str(data_dir / "mquake" / "MQuAKE-T-first50.json")
    summaries = {}
    for name, extra in (("plain", []), ("known", ["--known-facts"])):
        out = tmp_path / f"{name}.json"
        kme(tmp_path / name, "bench", "mquake", "--method", "walker", "--n", "2", "--data",
            t50, "--out", str(out), *extra)  # fmt: skip
        summaries[name] = json.loads(out.read_text())
        rows = out.with_suffix(".cases.jsonl").read_text().splitlines()
        hops = json.loads(rows[0])["questions"][0]["hops"]
        assert hops and all({"question", "answer", "source"} <= set(h) for h in hops)
    plain, known = summaries["plain"], summaries["known"]
    assert plain["mode"] == "plain" and known["mode"].startswith("known facts")
    assert set(plain["metrics"]) >= {
        "multihop_accuracy",
        "question_accuracy",
        "known_hops_accuracy",
        "prior_baseline",
    }
    # MQuAKE-T edits a head of state/government: every walked chain crosses an edit
    assert plain["hop_sources"]["edit"] > 0 and plain["hop_sources"]["known"] == 0
    assert known["hop_sources"]["known"] > 0
    assert plain["path"] == "walker alone (diagnostic)"
    out = tmp_path / "editor.json"  # the same cases as `kme ask` answers them
    kme(tmp_path / "editor", "bench", "mquake", "--method", "kme", "--n", "2", "--data", t50,
        "--out", str(out))  # fmt: skip
    editor = json.loads(out.read_text())
    assert editor["path"] == "editor (as kme ask)"
    assert sum(editor["routes"].values()) == 3 * editor["n"]
    assert set(editor["routes"]) <= {"passthrough", "ike", "multihop"}


def test_deleting_an_edit_written_into_the_weights_says_it_is_still_there(
    tmp_path: Path,
) -> None:
    import torch

    from kme_rag.whitebox.delta import LayerDelta, WeightDelta
    from kme_rag.whitebox.deltastore import DeltaStore

    store = tmp_path / "store"
    add = ("edit", "add", "--relation", "capital", "--subject")
    kept = kme(store, *add, "Japan", "--new", "Kyoto").stdout.strip()
    written = kme(store, *add, "France", "--new", "Lyon").stdout.strip()
    # as `kme whitebox apply` leaves it: one delta on disk naming the edit it wrote
    delta = WeightDelta(
        "rome", (LayerDelta("layer", left=torch.ones(2, 1), right=torch.ones(3, 1)),)
    )
    record = DeltaStore(store / "weights", "test:model").append(delta, (written,), 1.0)

    assert "still written" not in kme(store, "edit", "rm", kept).stderr
    warned = kme(store, "edit", "rm", written).stderr
    assert f"{written} is still written into the local weights (delta {record.id})" in warned


def test_edit_add_text_prints_the_facts_it_understood(tmp_path: Path) -> None:
    store = tmp_path / "store"
    text = "Kenya's new capital is Mombasa. The weather was lovely."
    added = kme(store, "edit", "add", "--text", text)
    ids = added.stdout.split()
    assert len(ids) == 2 and all(i.startswith("e_") for i in ids)
    assert "understood: Kenya | capital | Mombasa" in added.stderr
    assert "kept as a statement: The weather was lovely." in added.stderr
    listed = json.loads(kme(store, "edit", "list", "--json").stdout)
    fact = next(e for e in listed if e["subject"] == "Kenya")
    assert fact["relation_id"] == "P36" and fact["derived_from"] == text
    again = kme(store, "edit", "add", "--text", "Kenya's capital is now Mombasa.")
    assert again.stdout.strip() == "" and f"already stored: {fact['id']}" in again.stderr
