"""``chargeback rollup``: the scheduled run (rollup, then alerts: what the timer does), or a backfill
of ``--from``/``--to`` in chunks with a progress bar (no alerts: old hours have had theirs)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from shared.errors import InvalidRequestError
from shared.settings import Settings


def moment(text: str) -> datetime:
    """An ISO date or datetime argument, in UTC (naive = UTC)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date or datetime, got {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def register(sub: Any) -> None:
    rollup = sub.add_parser("rollup", help="roll usage up into Table Storage (scheduled window, or --from/--to)")
    rollup.add_argument("--from", dest="start", type=moment, help="backfill start (ISO), inclusive")
    rollup.add_argument("--to", dest="end", type=moment, help="backfill end (ISO), exclusive")
    rollup.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from shared.composition import alert_service, month_report_keeper, pipeline_watch, rollup_service

    service = rollup_service(settings)
    if args.start is None and args.end is None:
        from shared.services.scheduled_run import scheduled_run

        # what the timer runs, lag watch included
        scheduled_run(service, lambda: alert_service(settings), report=print, watch=lambda: pipeline_watch(settings),
                      keep_reports=month_report_keeper(settings))
        return 0
    if args.start is None or args.end is None:
        raise InvalidRequestError("--from/--to", "give both for a backfill, or neither for the scheduled window")
    if args.start >= args.end:
        raise InvalidRequestError("--from", "must be before --to")
    from tqdm import tqdm

    chunks = service.chunks(args.start, args.end)
    with tqdm(total=len(chunks), unit="chunk", desc="backfill", file=sys.stderr) as bar:
        result = service.backfill(args.start, args.end, progress=lambda _: bar.update(1))
    print(result.summary())
    return 0
