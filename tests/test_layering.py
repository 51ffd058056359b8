"""Data flows one way (DESIGN.md): no import cycle between the packages of toolkit, none between
modules, and no lower layer importing a higher one. Every import statement counts, those inside
functions included: a deferred import that runs back up is the same design bug."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lowest first; a package may import its own layer's modules and anything below it
LAYERS = [
    ["toolkit.errors"],
    ["toolkit.deploy"],  # the PyTorch-free runtime: nothing of the toolkit but its errors
    ["toolkit.data"],
    ["data_prep", "toolkit.nn"],
    ["toolkit.train"],
    ["toolkit.decode", "toolkit.seqdata"],
    ["toolkit.tasks"],
    ["toolkit.api", "toolkit.export"],
    ["toolkit.report", "toolkit.bench", "toolkit.recipe"],
    ["toolkit.cli"],
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the project modules it imports (``from pkg import name`` counts as ``pkg.name`` when
    that is a module, else as ``pkg``)."""
    files = [p for top in ("toolkit", "data_prep") for p in (ROOT / top).rglob("*.py")]
    known = {module_name(p) for p in files}
    edges: dict[str, set[str]] = defaultdict(set)
    for path in files:
        mod = module_name(path)
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != mod:
                    edges[mod].add(target)
    return edges


def package(mod: str) -> str:
    parts = mod.split(".")
    return parts[0] if parts[0] != "toolkit" else ".".join(parts[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walk_sees_function_level_and_relative_imports():
    edges = imports()
    assert "toolkit.api.loading" in edges["toolkit.api.decoding"]  # relative, module level
    assert "toolkit.api" in edges["toolkit.cli.decode"]  # inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_modules():
    assert cycles(imports()) == []


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, targets in imports().items():
        graph[package(mod)] |= {package(t) for t in targets if package(t) != package(mod)}
    assert cycles(graph) == []


def test_no_layer_imports_a_higher_one():
    upward = []
    for mod, targets in imports().items():
        for target in targets:
            a, b = package(mod), package(target)
            if a in RANK and b in RANK and RANK[b] > RANK[a]:
                upward.append(f"{mod} -> {target}")
    assert upward == []


def test_every_package_has_a_layer():
    packages = {package(m) for m in imports()} | {package(t) for ts in imports().values() for t in ts}
    assert packages - set(RANK) <= {"toolkit"}  # the root package: __version__ and the lazy toolkit.load
