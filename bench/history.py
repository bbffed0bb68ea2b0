"""Bench 2: the rollup of one window costs the same whatever history the workspace holds.

Two workspaces hold the same window (24 hours, 500,000 gateway rows) after 1x and 10x as much
older history (same traffic density: 1 and 10 earlier days).  Rows are inserted in time order, as
Log Analytics ingests them, so each DuckDB row group (122,880 rows) covers a short time range and
its zone map (min/max of TimeGenerated) lets the scan skip every group outside the window: the
bound parameters become constant table filters.  The profile's rows/row groups scanned show it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Result, say, side_by_side, workdir
from bench.data import Spec, build_workspace
from bench.rollup_query import parameters

WINDOW_START = datetime(2026, 11, 11, tzinfo=UTC)


def scanned(path: Path, text: str, values: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """Table -> (rows scanned, row groups scanned, row groups in table) of one profiled run."""
    from shared.adapters.local_workspace import bind, connect, translate

    profile = path.with_suffix(".profile.json")
    con = connect(path, read_only=True)
    try:
        con.execute("SET TimeZone='UTC'")
        con.execute("PRAGMA enable_profiling='json'")
        con.execute(f"PRAGMA profiling_output='{profile}'")
        con.execute(str(translate(text)), bind(translate(text), values)).fetchall()
    finally:
        con.close()
    found: dict[str, tuple[int, int, int]] = {}

    def walk(node: dict[str, Any]) -> None:
        if node.get("type") == "TABLE_SCAN":
            table = str(node["extra_info"].get("Table", "?")).rsplit(".", 1)[-1]
            found[table] = (int(node.get("rows_scanned", 0)), int(node.get("row_groups_scanned", 0)),
                            int(node.get("total_row_groups_to_scan", 0)))
        for child in node.get("children", []):
            walk(child)

    for node in json.loads(profile.read_text()).get("operator", []):
        walk(node)
    return found


def run(tiny: bool = False) -> list[Result]:
    from shared.adapters.local_workspace import LocalWorkspaceSource
    from shared.queries import load

    window_rows = 5_000 if tiny else 500_000
    subscriptions = 20 if tiny else 200
    window = Spec(window_rows, WINDOW_START, 24, subscriptions, seed=1)
    query = load("usage_by_subscription")
    values = parameters(window.start, window.end)
    with workdir("history") as folder:
        paths: dict[str, Path] = {}
        for factor in (1, 10):
            path = folder / f"history{factor}x.duckdb"
            history = Spec(window_rows * factor, WINDOW_START - timedelta(days=factor), 24 * factor, subscriptions,
                           seed=100 + factor)
            began = time.perf_counter()
            gateway, llm = build_workspace(path, [history, window])
            say(f"{factor:>2}x history: {gateway:,} gateway + {llm:,} LLM-log rows ({history.rows:,} gateway rows "
                f"before the window) in {time.perf_counter() - began:.1f}s, {path.stat().st_size / 1e6:.0f} MB")
            paths[f"{factor}x"] = path
        out: dict[str, list[dict[str, Any]]] = {}
        sources = {name: LocalWorkspaceSource(path) for name, path in paths.items()}

        def candidate(name: str) -> Any:
            return lambda: out.__setitem__(name, sources[name].run(query, values))

        candidates = {name: candidate(name) for name in sources}
        side_by_side(candidates, 1)
        timings = side_by_side(candidates, 2 if tiny else 7)
        same = sorted(map(str, out["1x"])) == sorted(map(str, out["10x"]))
        for name, t in timings.items():
            rows = scanned(paths[name], query.text, values)
            scans = "; ".join(f"{table}: {r:,} rows in {g}/{total} row groups" for table, (r, g, total) in rows.items())
            say(f"{name:>3} history: median {t.median:.3f}s wall ({', '.join(f'{x:.2f}' for x in t.wall)}); "
                f"scanned {scans}")
        say(f"identical rollup rows: {'yes' if same else 'NO'}")
    ratio = timings["10x"].median / timings["1x"].median
    return [Result("rollup with 10x / 1x history (wall)", ratio, "x", 1.2,
                   detail=f"{timings['10x'].median:.3f}s vs {timings['1x'].median:.3f}s for the same "
                          f"{window_rows:,}-row window")]
