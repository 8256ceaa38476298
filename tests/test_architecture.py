"""The import structure docs/architecture.md promises: no module of bench/ or
predictors/ imports one that imports it back, and bench/ imports nothing from
predictors/ (its benchmark scripts aside). Lazy imports inside functions count."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "predictors")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports, at the top or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        out.update(n for n in names if n in known)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    # A package's __init__ re-exporting its own modules is not a cycle worth naming.
    return {name: {m for m in _imports(path, known) if m != name and not m.startswith(name + ".")}
            for name, path in modules.items()}


def test_the_walk_sees_lazy_imports():
    graph = _graph()
    assert "bench.reports.charts" in graph["bench.reports.publish"]


def test_no_module_imports_one_that_imports_it_back():
    graph = _graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                if nxt == goal:
                    return True
                seen.add(nxt)
                todo.append(nxt)
        return False

    assert [m for m in graph if reaches(m, m)] == []


def test_bench_imports_nothing_from_predictors():
    graph = _graph()
    offenders = {m: sorted(d for d in deps if d.startswith("predictors"))
                 for m, deps in graph.items()
                 if m.startswith("bench") and not m.startswith("bench.perf")}
    assert {m: d for m, d in offenders.items() if d} == {}
