"""Local development commands: ``demo-data`` (a deterministic demo workspace), ``local-run`` (the
whole pipeline on this machine) and ``queries check`` (Microsoft's KQL analyzer over queries/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shared.settings import Settings

EXIT_FAILED = 1


def whole_days(text: str) -> int:
    """``--days``: a whole number of days, at least one (no data over zero or negative days)."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 day, got {days}")
    return days


def register(sub: Any) -> None:
    demo = sub.add_parser("demo-data", help="write a deterministic demo workspace (DuckDB)")
    demo.add_argument("--seed", type=int, default=42, help="random seed: the same seed writes the same rows")
    demo.add_argument("--days", type=whole_days, default=3, help="days of traffic, ending this hour (default 3)")
    demo.add_argument("--path", type=Path, help="workspace file (default LOCAL_WORKSPACE_PATH); an existing one "
                                                "is kept as <name>.previous.duckdb")
    demo.set_defaults(run=demo_data)

    run = sub.add_parser("local-run", help="Azurite + demo workspace + rollup + report API on this machine")
    run.add_argument("--host", default="127.0.0.1", help="address the report API listens on")
    run.add_argument("--port", type=int, default=7071,
                     help="report API port (default 7071); 0 = free ports for the API, Azurite and the dev gateway")
    run.add_argument("--seed", type=int, default=42, help="random seed of the demo data and traffic")
    run.add_argument("--fresh", action="store_true",
                     help="replace the workspace with demo data (default: keep an existing one, e.g. imported logs)")
    run.add_argument("--no-serve", action="store_true", help="stop after printing the summary")
    run.set_defaults(run=local_run)

    queries = sub.add_parser("queries", help="query tooling")
    queries_sub = queries.add_subparsers(dest="queries_command", required=True)
    queries_sub.add_parser("check", help="check every .kql file with Microsoft's KQL analyzer").set_defaults(
        run=check_queries)


def demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from shared.tooling.demo.demo_run import write_demo_workspace
    from shared.tooling.demo.workspace_state import read_contents, set_aside

    path = args.path or settings.local_workspace_path
    existing = read_contents(path)
    if existing is not None and not existing.empty:
        previous = set_aside(path)
        print(f"warning: replacing {path} ({existing.describe()}); the previous file is kept as {previous}",
              file=sys.stderr)
    gateway, llm = write_demo_workspace(path, args.seed, args.days)
    print(f"wrote {path}: {gateway} gateway rows, {llm} LLM-log rows (seed {args.seed}, {args.days} days)")
    return 0


def local_run(args: argparse.Namespace, settings: Settings) -> int:
    from shared.tooling.demo.demo_run import local_run as run_locally

    run_locally(settings, args.host, args.port, args.seed, serve=not args.no_serve, fresh=args.fresh)
    return 0


def check_queries(_: argparse.Namespace, __: Settings) -> int:
    from shared.queries import QUERIES_DIR
    from shared.tooling.querycheck import check_queries as check
    from shared.tooling.querycheck import format_report

    report = check([QUERIES_DIR])
    print(format_report(report))
    return 0 if report.ok else EXIT_FAILED
