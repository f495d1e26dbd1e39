"""The package's layers, read from its source: the runtime imports nothing of the
benchmarks, and no two modules of kme_rag import each other in a circle.

Imports are read with ``ast`` from every module of the package, wherever they sit in a
file (a lazy import inside a function is still a dependency); only imports under
``if TYPE_CHECKING:`` are left out, since they never run."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import kme_rag

PACKAGE = Path(kme_rag.__file__).parent
RUNTIME = (
    "kme_rag.backends",
    "kme_rag.editor",
    "kme_rag.errors",
    "kme_rag.ike",
    "kme_rag.matching",
    "kme_rag.memory",
    "kme_rag.multihop",
    "kme_rag.scope",
    "kme_rag.server",
    "kme_rag.settings",
    "kme_rag.whitebox",
    "kme_rag.wrappers",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path) -> set[str]:
    """The kme_rag modules ``path`` imports (``from a.b import c`` counts as a.b, and as
    a.b.c when that is a module)."""
    found: set[str] = set()
    skipped: set[int] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if _type_checking_only(node):
            skipped |= {id(n) for n in ast.walk(node)} - {id(node)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("kme_rag")}


def import_graph() -> nx.DiGraph:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in imports_of(path) & modules.keys():
            if target != name and not name.startswith(target + "."):  # a package's own parent
                graph.add_edge(name, target)
    return graph


def in_layer(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def test_the_runtime_imports_nothing_of_the_benchmarks() -> None:
    graph = import_graph()
    assert any(in_layer(m, "kme_rag.bench") for m in graph), "the bench package moved?"
    wrong = sorted(
        (source, target)
        for source, target in graph.edges
        if any(in_layer(source, layer) for layer in RUNTIME)
        and (in_layer(target, "kme_rag.bench") or in_layer(target, "kme_rag.report"))
    )
    assert wrong == []


def test_the_report_only_renders() -> None:
    """``report`` reads result files: it runs no model, store or benchmark (``extras``
    only names the extra a missing plotting package belongs to)."""
    graph = import_graph()
    allowed = ("kme_rag.report", "kme_rag.errors", "kme_rag.extras")
    wrong = sorted(
        (s, t)
        for s, t in graph.edges
        if in_layer(s, "kme_rag.report") and not any(in_layer(t, a) for a in allowed)
    )
    assert wrong == []


def test_no_import_cycles() -> None:
    """Package ``__init__`` re-exports are left out: a package importing its own
    modules is not a circle."""
    graph = import_graph()
    inits = [m for m in graph if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").exists()]
    cycles = list(nx.simple_cycles(graph.subgraph(set(graph) - set(inits))))
    assert cycles == []
