"""Import cycles between the modules of a package: every import counts.

Python only fails on a cycle when both ends run their imports at module level, so a cycle hidden in
a function body or under ``TYPE_CHECKING`` works today and breaks the day someone hoists the import.
This check therefore reads the source (``ast``, nothing is imported or executed) and takes every
``import`` / ``from ... import`` wherever it sits: module level, ``if TYPE_CHECKING:``, function and
method bodies, ``try`` blocks.  An import of ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``,
so those package edges are added too (except to the importer's own ancestor packages, which are
already loaded by the time it runs).

Usage: ``python scripts/check_import_cycles.py [package_dir ...]`` (default ``shared``), run from the
repository root.  Prints each cycle (one strongly connected component and one concrete loop through
it) and exits 1 when there is any, 0 otherwise.  ``import_graph`` and ``import_cycles`` are the API a
test can call.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package_dir`` (its parent is the import root)."""
    root = package_dir.resolve().parent
    modules = {}
    for path in sorted(package_dir.resolve().rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every dotted name an import statement anywhere in ``tree`` may load (module or module.attribute)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # relative: level 1 is the importer's own package (the module itself for an __init__)
                package = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = package[:len(package) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}"


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (directly, anywhere in its source)."""
    files = module_files(package_dir)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        own_ancestors = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        for name in _imported_names(tree, module, path.name == "__init__.py"):
            # ``from a.b import c``: c is a submodule (a.b.c) or an attribute of a.b; take the longest
            # prefix that is a module, then the packages above it, which the import also runs.
            parts = name.split(".")
            target = next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in files),
                          None)
            if target is None:
                continue
            target_parts = target.split(".")
            for i in range(1, len(target_parts) + 1):
                loaded = ".".join(target_parts[:i])
                if loaded != module and loaded not in own_ancestors and loaded in files:
                    graph[module].add(loaded)
    return graph


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))
    return sorted(found)


def _loop_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle inside ``component``, starting and ending at its first module (BFS, shortest)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start]


def import_cycles(package_dir: Path) -> list[list[str]]:
    """Each cycle as a module path ``[a, b, ..., a]``; empty when the package's import graph is acyclic."""
    graph = import_graph(package_dir)
    return [_loop_through(graph, component) for component in _components(graph)]


def main(argv: list[str]) -> int:
    status = 0
    for directory in argv or ["shared"]:
        package = Path(directory)
        graph = import_graph(package)
        cycles = import_cycles(package)
        edges = sum(len(targets) for targets in graph.values())
        print(f"{package}: {len(graph)} modules, {edges} import edges (module level, TYPE_CHECKING and "
              f"function-level imports included), {len(cycles)} cycle(s)")
        for cycle in cycles:
            print("  cycle: " + " -> ".join(cycle))
        status = status or (1 if cycles else 0)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
