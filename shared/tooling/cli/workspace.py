"""``chargeback workspace import PATH...``: load exported APIM logs into the local DuckDB workspace."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shared.errors import InvalidRequestError
from shared.settings import Settings

EXIT_FAILED = 1


def register(sub: Any) -> None:
    workspace = sub.add_parser("workspace", help="local DuckDB workspace tooling")
    workspace_sub = workspace.add_subparsers(dest="workspace_command", required=True)
    imp = workspace_sub.add_parser(
        "import", help="load exported APIM logs (diagnostic JSON/Avro, Log Analytics CSV/JSON, gzip or not)")
    imp.set_defaults(run=run_import)
    imp.add_argument("files", nargs="+", type=Path, metavar="PATH",
                     help="log files; a directory means every file under it")
    imp.add_argument("--path", type=Path, help="workspace file (default LOCAL_WORKSPACE_PATH)")
    imp.add_argument("--table", help="table of Log Analytics exports that have no Type column "
                                     "(ApiManagementGatewayLogs or ApiManagementGatewayLlmLog)")


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    from shared.tooling.log_import.records import TABLES, table_name
    from shared.tooling.log_import.writer import import_files

    table = None
    if args.table is not None:
        table = table_name(args.table)
        if table is None:
            raise InvalidRequestError("--table", f"expected one of {', '.join(TABLES)}, got {args.table!r}")
    workspace = args.path or settings.local_workspace_path
    report = import_files(workspace, args.files, table)
    print(report.summary())
    return 0 if report.ok else EXIT_FAILED
