"""Bench 1 + 3: the rollup query on the local workspace vs the same aggregate in hand-written SQL.

1,000,000 gateway rows (+ ~1,005,000 LLM-log rows) in one 24-hour window, 200 subscriptions.
Candidates, run alternately on fresh read-only connections:

* ``kql``: ``LocalWorkspaceSource.run`` (queries/usage_by_subscription.kql through duckdb-kql,
  translation cached per process, results conformed to the contract), as the rollup calls it;
* ``hand``: bench/rollup_hand.sql, the same aggregate written directly in DuckDB SQL, its rows
  conformed to the same contract (both sides pay the same ~20 ms of Python for 10k rows).

Also: the one-off translation cost the cache saves, that both give identical rows, and (bench 3)
that only aggregates leave the workspace: rows out <= subscriptions x model keys x hours.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Result, say, side_by_side, workdir
from bench.data import DEPLOYMENTS, Spec, build_workspace

HAND_SQL = Path(__file__).with_name("rollup_hand.sql")
WINDOW_START = datetime(2026, 11, 1, tzinfo=UTC)
SUBSCRIPTIONS = 200


def parameters(start: datetime, end: datetime, usage_source: str = "auto") -> dict[str, Any]:
    """The rollup query's parameters as the rollup sends them (no probe subscription)."""
    return {"window_start": start, "window_end": end, "usage_source": usage_source, "probe_subscription": "",
            "probe_header": "x-chargeback-probe"}


def run_hand(path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The hand-written SQL, its rows conformed to the query's contract like the KQL candidate's
    (the dicts the rollup reads), so that the ratio compares the two queries, not the adapters."""
    from shared.adapters.local_workspace import connect
    from shared.queries import conform, load

    naive = {k: (v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) else v) for k, v in values.items()}
    con = connect(path, read_only=True)
    try:
        con.execute("SET TimeZone='UTC'")
        cursor = con.execute(HAND_SQL.read_text(encoding="utf-8"), naive)
        return conform(load("usage_by_subscription"), [column[0] for column in cursor.description], cursor.fetchall())
    finally:
        con.close()


def comparable(records: list[dict[str, Any]], columns: list[str]) -> list[tuple[Any, ...]]:
    return sorted(tuple(r[c] for c in columns) for r in records)


def run(tiny: bool = False) -> list[Result]:
    import duckdb_kql

    from shared.adapters import local_workspace
    from shared.adapters.local_workspace import LocalWorkspaceSource
    from shared.queries import load

    rows = 5_000 if tiny else 1_000_000
    hours = 24
    spec = Spec(rows=rows, start=WINDOW_START, hours=hours, subscriptions=20 if tiny else SUBSCRIPTIONS)
    query = load("usage_by_subscription")
    values = parameters(spec.start, spec.end)
    with workdir("rollup") as folder:
        path = folder / "workspace.duckdb"
        began = time.perf_counter()
        gateway, llm = build_workspace(path, [spec])
        say(f"workspace: {gateway:,} gateway + {llm:,} LLM-log rows in {time.perf_counter() - began:.1f}s "
            f"({path.stat().st_size / 1e6:.0f} MB), window {spec.start:%Y-%m-%d %H:%M} + {hours}h, "
            f"{spec.subscriptions} subscriptions")

        # The translation the cache saves on every run after the first.
        local_workspace.translate.cache_clear()
        began = time.perf_counter()
        local_workspace.translate(query.text)
        translation = time.perf_counter() - began
        kql_sql = str(local_workspace.translate(query.text))

        source = LocalWorkspaceSource(path)
        out: dict[str, Any] = {}
        candidates = {
            "kql": lambda: out.__setitem__("kql", source.run(query, values)),
            "hand": lambda: out.__setitem__("hand", run_hand(path, values)),
        }
        side_by_side(candidates, 1)  # warm-up: OS page cache, DuckDB's first open
        timings = side_by_side(candidates, 2 if tiny else 7)
        kql, hand = timings["kql"], timings["hand"]
        same = comparable(out["kql"], list(query.columns)) == comparable(out["hand"], list(query.columns))
        say(f"kql  (LocalWorkspaceSource.run): median {kql.median:.3f}s wall, {kql.median_cpu:.3f}s CPU "
            f"(runs: {', '.join(f'{t:.2f}' for t in kql.wall)})")
        say(f"hand (DuckDB SQL):               median {hand.median:.3f}s wall, {hand.median_cpu:.3f}s CPU "
            f"(runs: {', '.join(f'{t:.2f}' for t in hand.wall)})")
        say(f"translation (once per process, cached): {translation:.3f}s for {len(kql_sql):,} characters of SQL; "
            f"identical rows: {'yes' if same else 'NO'}")
        if not same:
            say("WARNING: the hand SQL no longer computes what the .kql computes; update bench/rollup_hand.sql")

        # Bench 3: only aggregates leave the workspace.
        records = out["kql"]
        subscriptions = {r["SubscriptionId"] for r in records}
        model_keys = {(r["Model"], r["Deployment"]) for r in records}
        # The bound from the input, not the output: every subscription seen (+ unattributed and the
        # probe), every deployment with its model or "unknown", every hour of the window.
        sub_bound = spec.subscriptions + 2
        key_bound = 2 * len(DEPLOYMENTS)
        bound = sub_bound * key_bound * hours
        assert len(records) <= bound, f"{len(records)} rows out > bound {bound}"
        say(f"rows out: {len(records):,} aggregate rows for {gateway:,} requests "
            f"({gateway / len(records):,.0f}x fewer); "
            f"bound {sub_bound} subscriptions x {key_bound} model/deployment keys x {hours} hours = {bound:,}; "
            f"seen {len(subscriptions)} subscriptions, {len(model_keys)} keys")
        if not tiny:
            _explain(path, kql_sql, duckdb_kql, query.text, values)

    return [
        Result("rollup query, kql / hand SQL (wall)", kql.median / hand.median, "x", 1.5,
               detail=f"kql {kql.median:.3f}s vs hand {hand.median:.3f}s wall; CPU {kql.median_cpu:.2f}s vs "
                      f"{hand.median_cpu:.2f}s ({kql.median_cpu / hand.median_cpu:.2f}x); {gateway:,} rows"),
        Result("rollup query, kql absolute (wall)", kql.median, "s", 1.0),
        Result("rollup rows out / bound", len(records) / bound, "", 1.0,
               detail=f"{len(records):,} rows out <= {bound:,} (subscriptions x keys x hours)"),
    ]


def _explain(path: Path, sql: str, duckdb_kql: Any, text: str, values: dict[str, Any]) -> None:
    """Where the kql candidate's time goes: the costliest operators of one profiled run."""
    import json

    from shared.adapters.local_workspace import bind, connect, translate

    con = connect(path, read_only=True)
    try:
        con.execute("SET TimeZone='UTC'")
        con.execute("PRAGMA enable_profiling='json'")
        profile = path.with_suffix(".profile.json")
        con.execute(f"PRAGMA profiling_output='{profile}'")
        con.execute(sql, bind(translate(text), values)).fetchall()
    finally:
        con.close()
    doc = json.loads(profile.read_text())
    operators: list[tuple[float, str]] = []

    def walk(node: dict[str, Any], parent: str) -> None:
        name = node.get("name", "?")
        operators.append((float(node.get("timing", 0.0)), f"{name} <- {parent}" if parent else name))
        for child in node.get("children", []):
            walk(child, name)

    for node in doc.get("operator", []):
        walk(node, "")
    total = sum(t for t, _ in operators)
    top = sorted(operators, reverse=True)[:5]
    say(f"profile of kql: {doc['query']['cpu_time']:.2f}s CPU; top operators: "
        + "; ".join(f"{name} {t:.2f}s ({t / total:.0%})" for t, name in top))
