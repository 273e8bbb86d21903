"""The house keeps one direction of dependencies: every package imports only packages below it in
:data:`ORDER` (docs/architecture.md), so nothing outside cli/ imports the command line and no two packages
import each other (directly or round a longer circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "entrenar_bench"
ORDER = ("cli", "api", "research", "cost", "aggregate", "sweep", "run", "teacher_signal", "tasks", "training",
         "distill", "models", "data", "rules", "locks", "files", "errors")  # top to bottom


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str | None:
    """``entrenar_bench.sweep.plan`` -> ``sweep``; a top-level module (``errors``) is its own room."""
    parts = module.split(".")
    return parts[1] if parts[0] == "entrenar_bench" and len(parts) > 1 else None


def imports_of(path: Path, root: Path) -> set[str]:
    """Every entrenar_bench module a file imports (absolute or relative, at any depth of the file)."""
    here = module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[:len(package) - node.level + 1], *([base] if base else [])])
            found |= {base, *(f"{base}.{a.name}" for a in node.names)}
    return {m for m in found if m.split(".")[0] == "entrenar_bench"}


def room_edges(root: Path) -> dict[tuple[str, str], str]:
    """(from room, to room) -> one file that makes the edge."""
    rooms = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    rooms |= {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    edges = {}
    for path in sorted(root.rglob("*.py")):
        mine = room(module_name(path, root))
        for theirs in {room(m) for m in imports_of(path, root)} & rooms:
            if mine in rooms and theirs != mine:
                edges.setdefault((mine, theirs), str(path.relative_to(root.parent)))
    return edges


def upward_imports(edges: dict[tuple[str, str], str]) -> list[str]:
    """Edges from a room to one above it (or to or from a room missing from :data:`ORDER`)."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(f"{a} -> {b} ({where})" for (a, b), where in edges.items()
                  if a not in rank or b not in rank or rank[a] > rank[b])


def cli_importers(root: Path) -> list[str]:
    return [str(p.relative_to(root.parent)) for p in sorted(root.rglob("*.py"))
            if room(module_name(p, root)) != "cli" and any(room(m) == "cli" for m in imports_of(p, root))]


def circles(edges) -> list[list[str]]:
    """Strongly connected components of more than one room (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, out = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_package_imports_only_packages_below_it():
    assert upward_imports(room_edges(PACKAGE)) == []


def test_the_order_guard_catches_an_upward_import(tmp_path):
    """A made-up package where data imports run: the same function must find it."""
    root = tmp_path / "entrenar_bench"
    for name, text in {"__init__.py": "", "run/__init__.py": "", "run/job.py": "from entrenar_bench.data import d\n",
                       "data/__init__.py": "", "data/d.py": "from entrenar_bench.run.job import x\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert upward_imports(room_edges(root)) == ["data -> run (entrenar_bench/data/d.py)"]


def test_nothing_outside_cli_imports_the_command_line():
    assert cli_importers(PACKAGE) == []


def test_no_packages_import_each_other_round_a_circle():
    edges = room_edges(PACKAGE)
    found = circles(edges)
    assert found == [], {" ~ ".join(c): [f"{a}->{b} ({edges[a, b]})" for a in c for b in c if (a, b) in edges]
                         for c in found}


def test_the_guards_catch_a_cli_import_and_a_circle(tmp_path):
    """A made-up package with both faults: the same functions must find them."""
    root = tmp_path / "entrenar_bench"
    for name, text in {"__init__.py": "", "cli/__init__.py": "", "cli/main.py": "from entrenar_bench.sweep import x\n",
                       "sweep/__init__.py": "", "sweep/x.py": "from entrenar_bench.run.app import run\n",
                       "run/__init__.py": "", "run/app.py": "from ..sweep import x\n",
                       "aggregate/__init__.py": "",
                       "aggregate/y.py": "def f():\n    from entrenar_bench.cli import main\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert cli_importers(root) == ["entrenar_bench/aggregate/y.py"]
    assert circles(room_edges(root)) == [["run", "sweep"]]


@pytest.mark.parametrize("module", ["entrenar_bench.cli.main", "entrenar_bench.run.app", "entrenar_bench.api",
                                    "entrenar_bench.cost.study", "entrenar_bench.research.verify"])
def test_modules_import_cleanly(module):
    __import__(module)
