"""``chargeback``: the operator's command line (rollup, backfill, demo data, local run, checks)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from shared import cli_access, cli_billing, probe_cli
from shared.errors import ChargebackError, InvalidRequestError
from shared.settings import Settings
from shared.tooling.log_import import command as workspace_command

EXIT_FAILED = 1
EXIT_USAGE = 2


def _moment(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date or datetime, got {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargeback", description=__doc__)
    parser.add_argument("--settings", type=Path, default=Path("local.settings.json"),
                        help="local.settings.json whose Values are read under the environment")
    sub = parser.add_subparsers(dest="command", required=True)

    rollup = sub.add_parser("rollup", help="roll usage up into Table Storage (scheduled window, or --from/--to)")
    rollup.add_argument("--from", dest="start", type=_moment, help="backfill start (ISO), inclusive")
    rollup.add_argument("--to", dest="end", type=_moment, help="backfill end (ISO), exclusive")

    demo = sub.add_parser("demo-data", help="write a deterministic demo workspace (DuckDB)")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--days", type=int, default=3)
    demo.add_argument("--path", type=Path, help="workspace file (default LOCAL_WORKSPACE_PATH)")

    run = sub.add_parser("local-run", help="Azurite + demo workspace + rollup + report API on this machine")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=7071)
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--no-serve", action="store_true", help="stop after printing the summary")

    probe_cli.add_parsers(sub)  # probe, dev-gateway

    queries = sub.add_parser("queries", help="query tooling")
    queries_sub = queries.add_subparsers(dest="queries_command", required=True)
    queries_sub.add_parser("check", help="check every .kql file with Microsoft's KQL analyzer")
    cli_billing.add_parsers(sub)  # report chargeback, quota, prices, alerts
    cli_access.add_parsers(sub)  # access grant, revoke, list
    workspace_command.add_parsers(sub)  # workspace import
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the openai client logs every request at INFO
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_environment(local_settings=args.settings)
        return _dispatch(args, settings)
    except InvalidRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ChargebackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "rollup":
        return _rollup(args, settings)
    if args.command in cli_billing.COMMANDS:
        return cli_billing.dispatch(args, settings)
    if args.command in cli_access.COMMANDS:
        return cli_access.dispatch(args, settings)
    if args.command == "demo-data":
        from shared.tooling.demo.demo_run import write_demo_workspace

        path = args.path or settings.local_workspace_path
        gateway, llm = write_demo_workspace(path, args.seed, args.days)
        print(f"wrote {path}: {gateway} gateway rows, {llm} LLM-log rows (seed {args.seed}, {args.days} days)")
        return 0
    if args.command == "local-run":
        from shared.tooling.demo.demo_run import local_run

        local_run(settings, args.host, args.port, args.seed, serve=not args.no_serve)
        return 0
    if args.command in ("probe", "dev-gateway"):
        return probe_cli.dispatch(args, settings) or 0
    if args.command == "queries":
        from shared.queries import QUERIES_DIR
        from shared.tooling.querycheck import check_queries, format_report

        report = check_queries([QUERIES_DIR])
        print(format_report(report))
        return 0 if report.ok else EXIT_FAILED
    if args.command == "workspace":
        return workspace_command.dispatch(args, settings)
    raise AssertionError(args.command)


def _rollup(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from shared.composition import rollup_service

    service = rollup_service(settings)
    if args.start is None and args.end is None:
        result = service.run()
        print(result.summary())
        # the scheduled path evaluates quotas afterwards, like the timer (a backfill does not)
        from shared.composition import alert_service

        alerts = alert_service(settings).run(result.window)
        print(alerts.summary())
        alerts.raise_for_errors()
        return 0
    if args.start is None or args.end is None:
        raise InvalidRequestError("--from/--to", "give both for a backfill, or neither for the scheduled window")
    if args.start >= args.end:
        raise InvalidRequestError("--from", "must be before --to")
    chunks = service.chunks(args.start, args.end)
    with tqdm(total=len(chunks), unit="chunk", desc="backfill", file=sys.stderr) as bar:
        result = service.backfill(args.start, args.end, progress=lambda _: bar.update(1))
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
