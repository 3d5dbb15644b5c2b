"""The package layout: deprecated module paths, import graph, self-contained references.

These check properties of the source tree itself (docs/theory.md replaced an outside
specification; one package per theorem family; no import cycles apart from the one lazy
import documented in :meth:`deepdual.Solution.summary`).
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import re
import sys
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

OLD_PATHS = {
    "deepdual.solvers.linear": ("solve_linear", "deepdual.linear.solver"),
    "deepdual.certificates.linear": ("certify_linear", "deepdual.linear.certificate"),
    "deepdual.certificates.relu": ("certify_relu", "deepdual.relu.certificate"),
    "deepdual.certificates": ("certify_network", "deepdual.certification"),
    "deepdual.solvers.relu": ("solve_relu", "deepdual.relu.dispatch"),
    "deepdual.solvers.relu_rank_one": ("solve_rank_one", "deepdual.relu.rank_one.solver"),
    "deepdual.solvers.relu_whitened": ("solve_whitened", "deepdual.relu.whitened.solver"),
    "deepdual.solvers.relu_whitened_losses": ("solve_whitened_losses", "deepdual.relu.whitened.losses"),
    "deepdual.solvers.relu_1d": ("certify_1d", "deepdual.relu.one_dimensional.solver"),
    "deepdual.solvers.relu_1d_splines": ("interpolate", "deepdual.relu.one_dimensional.splines"),
    "deepdual.solvers.relu_convex": ("Groups", "deepdual.relu.convex_program.groups"),
    "deepdual.solvers.relu_convex_rebuild": ("polish_network", "deepdual.relu.convex_program.rebuild"),
    "deepdual.solvers.conic_ipm": ("GroupSOCQP", "deepdual.relu.convex_program.conic_ipm"),
    "deepdual.solvers.batchnorm": ("solve_batchnorm", "deepdual.relu.batchnorm.solver"),
    "deepdual.solvers.streaming": ("solve_streaming", "deepdual.streaming"),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_module_paths_warn_and_forward(old):
    name, new = OLD_PATHS[old]
    for mod in [m for m in sys.modules if m == old or m.startswith(old + ".")]:
        del sys.modules[mod]
    sys.modules.pop("deepdual.solvers", None)
    sys.modules.pop("deepdual.certificates", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any(old in m and "deprecated" in m for m in messages), messages
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError, match="moved to"):
        getattr(module, "no_such_name")


def _module_graph() -> dict[str, set[str]]:
    mods: dict[str, tuple[pathlib.Path, bool]] = {}
    for p in (SRC / "deepdual").rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, (p, is_pkg) in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = m.split(".") if is_pkg else m.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for cand in [target] + [f"{target}.{a.name}" for a in node.names]:
                    if cand in mods and cand != m:
                        edges[m].add(cand)
            elif isinstance(node, ast.Import):
                edges[m].update(a.name for a in node.names if a.name in mods and a.name != m)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_counting_lazy_imports():
    """Every import, module-level or inside a function, goes one way; the one exception is
    ``Solution.summary`` -> ``report`` (a summary with data certifies, and the certifiers
    build ``Solution`` objects), a lazy import that breaks that real cycle."""
    edges = _module_graph()
    assert "deepdual.report" in edges["deepdual.solution"]
    edges["deepdual.solution"].discard("deepdual.report")
    assert _cycles(edges) == []
    assert "deepdual.network" not in edges["deepdual._torch"]


def test_no_private_names_across_modules():
    """A module never imports another module's underscore names."""
    offenders = []
    for p in (SRC / "deepdual").rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("deepdual")):
                offenders += [f"{p.relative_to(SRC)}: {a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__") and a.name != "_common"]
    assert offenders == []


def test_repository_cites_nothing_outside_it():
    pattern = re.compile(r"\b" + "SP" + "EC" + r"\b")  # spelled in pieces so this file does not cite it
    hits = []
    for p in ROOT.rglob("*"):
        if ".git" in p.parts or not p.is_file() or p.suffix not in {".py", ".md", ".toml", ".txt", ".cfg"}:
            continue
        if any(pattern.search(line) for line in p.read_text(encoding="utf-8", errors="ignore").splitlines()):
            hits.append(str(p.relative_to(ROOT)))
    assert hits == []


def test_readme_layout_matches_tree():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Where things are", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    listed = set()
    for line in block.strip().splitlines():
        for path in line.split("  ")[0].split(","):
            path = path.strip()
            if path:
                listed.add(path if path.startswith(("src/", "docs", "tests", "benchmarks"))
                           else "src/deepdual/" + path)
    for path in listed:
        assert (ROOT / path).is_dir(), f"README lists {path}, which is not a folder"
    packages = {str(p.parent.relative_to(ROOT)) + "/" for p in (SRC / "deepdual").rglob("__init__.py")}
    assert packages <= listed, f"folders missing from README: {sorted(packages - listed)}"
