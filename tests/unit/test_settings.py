"""Settings that name paths: made absolute once, so every folder and subprocess agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from kme_rag.settings import Settings


def test_a_relative_data_dir_is_made_absolute_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KME_DATA_DIR", "data")
    assert Settings().data_dir == tmp_path.resolve() / "data"


def test_the_default_data_dir_is_found_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KME_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data here: the checkout's is the default
    checkout = Path(__file__).resolve().parents[2]
    assert Settings().data_dir == checkout.parent / "shared" / "data"
