"""Local development commands: ``demo-data`` (a deterministic demo workspace), ``local-run`` (the
whole pipeline on this machine) and ``queries check`` (Microsoft's KQL analyzer over queries/)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shared.settings import Settings

EXIT_FAILED = 1


def register(sub: Any) -> None:
    demo = sub.add_parser("demo-data", help="write a deterministic demo workspace (DuckDB)")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--days", type=int, default=3)
    demo.add_argument("--path", type=Path, help="workspace file (default LOCAL_WORKSPACE_PATH)")
    demo.set_defaults(run=demo_data)

    run = sub.add_parser("local-run", help="Azurite + demo workspace + rollup + report API on this machine")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=7071)
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--no-serve", action="store_true", help="stop after printing the summary")
    run.set_defaults(run=local_run)

    queries = sub.add_parser("queries", help="query tooling")
    queries_sub = queries.add_subparsers(dest="queries_command", required=True)
    queries_sub.add_parser("check", help="check every .kql file with Microsoft's KQL analyzer").set_defaults(
        run=check_queries)


def demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from shared.tooling.demo.demo_run import write_demo_workspace

    path = args.path or settings.local_workspace_path
    gateway, llm = write_demo_workspace(path, args.seed, args.days)
    print(f"wrote {path}: {gateway} gateway rows, {llm} LLM-log rows (seed {args.seed}, {args.days} days)")
    return 0


def local_run(args: argparse.Namespace, settings: Settings) -> int:
    from shared.tooling.demo.demo_run import local_run as run_locally

    run_locally(settings, args.host, args.port, args.seed, serve=not args.no_serve)
    return 0


def check_queries(_: argparse.Namespace, __: Settings) -> int:
    from shared.queries import QUERIES_DIR
    from shared.tooling.querycheck import check_queries as check
    from shared.tooling.querycheck import format_report

    report = check([QUERIES_DIR])
    print(format_report(report))
    return 0 if report.ok else EXIT_FAILED
