"""``chargeback reconcile``: a month's Azure bill (Cost Management export) against the allocation.

Registered into the ``chargeback`` parser by :mod:`shared.tooling.cli`.  The export comes from
``--cost-export FILE...`` (FOCUS 1.0+ or classic cost details; CSV, .csv.gz or parquet), or, without
it, from the COST_EXPORT_CONTAINER blob container (the month's latest run).  A table for people by
default, ``--csv`` for spreadsheets, ``--json`` for programs (the API's document).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from shared.core.months import parse_month
from shared.errors import InvalidRequestError
from shared.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    reconcile = sub.add_parser("reconcile", help="compare a month's Azure bill with the allocated costs")
    reconcile.set_defaults(run=_reconcile)
    reconcile.add_argument("--month", help="YYYY-MM (default: the current month, UTC)")
    reconcile.add_argument("--cost-export", nargs="+", type=Path, metavar="FILE",
                           help="Cost Management export file(s) of the month (default: read COST_EXPORT_CONTAINER)")
    reconcile.add_argument("--tolerance", default="0.01",
                           help="differences up to this amount are rounding, shown as 0 (default 0.01)")
    output = reconcile.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="CSV, exact amounts")
    output.add_argument("--json", action="store_true", help="the API's JSON document")


def _tolerance(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidRequestError("--tolerance", f"expected an amount such as 0.01, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise InvalidRequestError("--tolerance", f"must be 0 or more, got {text!r}")
    return value


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from shared.adapters.cost_exports import read_cost_exports
    from shared.composition import cost_export_store, price_catalog, table_store
    from shared.core.reconcile_present import reconciliation_csv, reconciliation_json, reconciliation_text
    from shared.services.reconciliation import month_exports, reconcile_exports

    tolerance = _tolerance(args.tolerance)
    month = parse_month(args.month, datetime.now(UTC))
    if args.cost_export:
        missing = [str(path) for path in args.cost_export if not path.is_file()]
        if missing:
            raise InvalidRequestError("--cost-export", f"no such file: {', '.join(missing)}")
        exports = read_cost_exports(args.cost_export)
    else:
        container = cost_export_store(settings)
        if container is None:
            raise InvalidRequestError("--cost-export", "name the export file(s), or set COST_EXPORT_CONTAINER")
        exports = month_exports(container, month, container.address.where)
    store = table_store(settings)
    report = reconcile_exports(exports, store, price_catalog(settings, store).current, month, tolerance)
    if args.csv:
        sys.stdout.write(reconciliation_csv(report))
    elif args.json:
        print(json.dumps(reconciliation_json(report), indent=2))
    else:
        print(reconciliation_text(report))
    return 0
