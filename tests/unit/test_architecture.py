"""The layering rules of shared/, read from the source (nothing imported): no import cycle anywhere
(TYPE_CHECKING and function-level imports included), thin routes, no dev tooling in production."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
PRODUCTION = ("shared.api", "shared.services", "shared.core", "shared.adapters", "shared.triggers")


@cache
def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_import_cycles", ROOT / "scripts" / "check_import_cycles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _graph() -> dict[str, set[str]]:
    """Parsed once for every rule below (reading all of shared/ is most of these tests' time)."""
    graph: dict[str, set[str]] = _checker().import_graph(SHARED)
    return graph


def test_shared_has_no_import_cycle() -> None:
    assert _checker().import_cycles(SHARED) == []


def test_routes_import_no_other_route_and_not_the_composition_root() -> None:
    graph = _graph()
    routes = {name for name in graph if name.startswith("shared.api.") and name.endswith("_routes")}
    assert len(routes) >= 6, routes
    offending = {route: sorted(target for target in graph[route]
                               if target in routes or target == "shared.composition")
                 for route in routes}
    assert not any(offending.values()), offending


def test_production_code_never_imports_dev_tooling() -> None:
    graph = _graph()
    production = [name for name in graph if name.startswith(PRODUCTION)] + ["shared.composition", "shared.settings"]
    offending = {name: sorted(t for t in graph[name] if t.startswith("shared.tooling")) for name in production}
    assert not any(offending.values()), offending


def test_the_pure_core_imports_no_sdk_no_io_client_and_no_outer_layer() -> None:
    import ast

    for path in sorted((SHARED / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("azure", "httpx", "duckdb", "openai", "shared.adapters",
                                            "shared.services", "shared.api", "shared.tooling",
                                            "shared.composition")), f"{path.name} imports {name}"
