"""Optional dependencies: a missing one is named with the extra that brings it, in the
library (require) and in one line from the CLI, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kme_rag.extras import EXTRA_OF, MissingExtraError, missing_extra, require

# What a core install lacks: every module an extra brings, but the embedder's: a wheel
# carries its graph, which this source checkout has not got (the wheel test runs without).
CORE_LACKS = [m for m, extra in sorted(EXTRA_OF.items()) if extra != "minilm"]
CORE_LACKS += ["sentence_transformers"]


def test_require_names_the_extra_of_a_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(MissingExtraError) as caught:
        require("uvicorn", "kme serve")
    assert caught.value.extra == "server"
    assert "pip install 'kme_rag[server]'" in caught.value.message
    assert caught.value.message.startswith("kme serve needs the optional package 'uvicorn'")


def test_the_library_names_the_server_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import kme_rag.server

    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingExtraError, match=r"kme_rag\[server\]"):
        _ = kme_rag.server.create_app


def test_require_returns_an_installed_module() -> None:
    assert require("json", "anything").dumps([1]) == "[1]"


def test_an_import_error_inside_an_installed_package_is_not_called_a_missing_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "brokenpkg.py").write_text("import no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        require("brokenpkg", "a test")
    assert not isinstance(caught.value, MissingExtraError)
    assert caught.value.name == "no_such_module_anywhere"


def test_missing_extra_maps_submodules_and_ignores_other_modules() -> None:
    found = missing_extra(ModuleNotFoundError("x", name="torch.nn"), "kme whitebox list")
    assert found is not None and found.extra == "whitebox"
    assert missing_extra(ModuleNotFoundError("x", name="yaml"), "kme") is None
    assert missing_extra(ValueError("x"), "kme") is None


def _kme_without_extras(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    script = (
        "import sys\n"
        f"for name in {CORE_LACKS!r}:\n"
        "    sys.modules[name] = None\n"
        f"sys.argv = ['kme', *{list(args)!r}]\n"
        "from kme_rag.cli import main\n"
        "main()\n"
    )
    env = {"KME_STORE": str(store), "PATH": "/usr/bin:/bin", "HOME": str(store.parent)}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("serve", "--upstream", "http://127.0.0.1:9"), "server"),
        (("whitebox", "list"), "whitebox"),
        (("ask", "Where is the Eiffel Tower?"), "local"),
    ],
)
def test_the_cli_names_the_extra_in_one_line(
    tmp_path: Path, args: tuple[str, ...], extra: str
) -> None:
    done = _kme_without_extras(*args, store=tmp_path / "store")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and f"pip install 'kme_rag[{extra}]'" in last


def test_the_core_commands_run_without_any_extra(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert _kme_without_extras("--help", store=store).returncode == 0
    added = _kme_without_extras(
        "edit",
        "add",
        "--subject",
        "Eiffel Tower",
        "--relation",
        "{} is in",
        "--new",
        "Rome",
        store=store,
    )
    assert added.returncode == 0, added.stderr[-2000:]
    listed = _kme_without_extras("edit", "list", store=store)
    assert "Eiffel Tower is in Rome." in listed.stdout
