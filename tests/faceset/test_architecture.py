"""The import rule (docs/architecture.md), checked on the source: which package may import which.

- ``curate`` is layered, lowest first: core, analysis, dataset, ops, extract, masks, interop, export, app; a
  folder imports only from folders before it. ``curate.core`` (geometry, media, files) imports nothing else of
  the project;
- ``curate`` imports nothing of ``train``, ``convert`` or ``faceset``; ``train`` nothing of ``convert`` or
  ``faceset``; ``convert`` nothing of ``faceset``: curate -> train -> convert -> faceset, never back up;
- ``train`` uses of ``curate`` only ``curate.core`` (no database, no model of the analysis);
- ``typer`` (the command line) only in ``faceset.cli`` (one module per package's commands);
- no import cycle anywhere in the project.

Every ``import`` statement counts, including those inside functions. Pure source reading: no database.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest
from paths import ROOT  # noqa: E402

PACKAGES = ("curate", "train", "convert", "faceset")


def module_name(path: Path) -> str:
    """Dotted module name of a source file under the repository root."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every absolute module a file imports (``from x import y`` also counts x.y, which may be a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def project_imports() -> dict[str, set[str]]:
    """Module -> the project modules (and names) it imports."""
    graph = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            graph[module_name(path)] = {m for m in imports_of(path) if m.split(".")[0] in PACKAGES}
    return graph


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_rule_sees_the_code():
    graph = project_imports()
    assert len(graph) > 50 and "curate.core.pose" in graph
    assert "curate.core.align" in graph["curate.core.pose"] or "curate.core.mesh" in graph["curate.core.pose"]


@pytest.mark.parametrize("package, forbidden", [
    ("curate", ("train", "convert", "faceset")),
    ("train", ("convert", "faceset")),
    ("convert", ("faceset",)),
])
def test_no_import_goes_back_up(package, forbidden):
    bad = [f"{m} imports {i}" for m, imported in project_imports().items() if within(m, package)
           for i in imported if any(within(i, f) for f in forbidden)]
    assert not bad, "\n".join(bad)


def test_train_uses_only_curate_core():
    """train reads export folders, not datasets: of curate it imports only ``curate.core`` (geometry, media, the
    checkpoint-file reader) — never the store, the cluster or a backend's models."""
    bad = [f"{m} imports {i}" for m, imported in project_imports().items() if within(m, "train")
           for i in imported if within(i, "curate") and not within(i, "curate.core")]
    assert not bad, "\n".join(bad)


# curate's folders, lowest first: each imports only from folders before it (and itself)
LAYERS = ("core", "analysis", "dataset", "ops", "extract", "masks", "interop", "export", "app")


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[0] == "curate" and parts[1] in LAYERS else None


KEPT_PATHS = {"curate.info": "curate.dataset.info", "curate.views": "curate.dataset.views"}  # users' old imports


def test_every_curate_module_lives_in_a_layer():
    stray = [m for m in project_imports() if within(m, "curate") and m != "curate" and layer(m) is None
             and m not in KEPT_PATHS]
    assert not stray, stray


def test_kept_import_paths_only_re_export():
    """The old paths users' scripts import (README before the layout) give the same objects, and nothing else of
    the project imports them."""
    import importlib

    for old, new in KEPT_PATHS.items():
        a, b = importlib.import_module(old), importlib.import_module(new)
        public = [n for n in vars(b) if not n.startswith("_") and callable(getattr(b, n))
                  and getattr(getattr(b, n), "__module__", "") == new]
        assert public and all(getattr(a, n) is getattr(b, n) for n in public), old
    users = [m for m, imported in project_imports().items() if m not in KEPT_PATHS
             for i in imported if any(within(i, old) for old in KEPT_PATHS)]
    assert not users, users


def test_curate_layers_import_only_downwards():
    """core imports nothing else of the project; analysis only core; ... app anything below it."""
    bad = [f"{m} imports {i}" for m, imported in project_imports().items() if layer(m) is not None
           for i in imported if within(i, "curate") and i != "curate" and layer(i) is not None and layer(i) > layer(m)]
    assert not bad, "\n".join(bad)


def test_core_imports_nothing_else_of_the_project():
    bad = [f"{m} imports {i}" for m, imported in project_imports().items() if within(m, "curate.core")
           for i in imported if not within(i, "curate.core")]
    assert not bad, "\n".join(bad)


def test_the_command_line_lives_in_cli_modules():
    bad = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = module_name(path)
            if "typer" in {i.split(".")[0] for i in imports_of(path)} and not within(name, "faceset.cli"):
                bad.append(name)
    assert not bad, bad


def test_no_import_cycles():
    """No module imports itself through others (a package's __init__ re-exporting its own modules aside)."""
    graph = project_imports()
    modules = set(graph)
    edges = defaultdict(set)
    for m, imported in graph.items():
        for i in imported:
            target = i if i in modules else i.rsplit(".", 1)[0]  # "from pkg.mod import name" -> pkg.mod
            if target in modules and target != m and not m.startswith(target + "."):
                edges[m].add(target)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path + [nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(modules):
        if start not in state and (cycle := visit(start, [start])):
            pytest.fail(" -> ".join(cycle))
