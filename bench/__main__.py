"""``python -m bench <name> [--tiny]`` / ``python -m bench all``: performance benches (see README)."""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time

from bench.common import Result, say

BENCHES = {
    "rollup-query": "bench.rollup_query",
    "history": "bench.history",
    "table-writes": "bench.table_writes",
    "report-latency": "bench.report_latency",
    "cold-start": "bench.cold_start",
    "backfill": "bench.backfill",
    "csv-stream": "bench.csv_stream",
    "ptu-allocation": "bench.ptu_allocation",
    "org-report": "bench.org_report",
    "scale-run": "bench.scale_run",
    "backfill-scale": "bench.backfill_scale",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=[*BENCHES, "all"])
    parser.add_argument("--tiny", action="store_true", help="smallest sizes (the smoke test): checks it runs")
    args = parser.parse_args(argv)
    names = list(BENCHES) if args.name == "all" else [args.name]
    say(f"# python -m bench {args.name}{' --tiny' if args.tiny else ''}: {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}")
    results: list[Result] = []
    began = time.perf_counter()
    for name in names:
        say(f"\n## {name}")
        start = time.perf_counter()
        module = importlib.import_module(BENCHES[name])
        found = module.run(tiny=args.tiny)
        for result in found:
            say(result.line())
        say(f"({name}: {time.perf_counter() - start:.1f}s)")
        results.extend(found)
    say(f"\n## summary ({time.perf_counter() - began:.0f}s)")
    for result in results:
        say(result.line().splitlines()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
