"""``chargeback report focus``: a month of cost as a FOCUS 1.2 file, or in FinOps hubs' ingestion layout.

Registered under ``chargeback report`` by :mod:`shared.tooling.cli.billing`.  CSV goes to stdout
unless ``--out`` names a file; parquet (pyarrow, in the local extras) needs ``--out`` or
``--hubs-layout``.  The row count and the BilledCost total (= the month's chargeback total) go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from shared.core.months import parse_month
from shared.errors import InvalidRequestError
from shared.settings import Settings


def register_report(report_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    focus = report_sub.add_parser("focus", help="the month's cost lines as a FOCUS 1.2 dataset (CSV or parquet)")
    focus.set_defaults(run=_focus)
    focus.add_argument("--month", help="YYYY-MM (default: the current month, UTC)")
    focus.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format (default: csv)")
    focus.add_argument("--out", type=Path, metavar="FILE", help="write the file here (default: CSV to stdout)")
    focus.add_argument("--hubs-layout", type=Path, metavar="DIR",
                       help="also write parquet as FinOps hubs ingests it: DIR/Costs/yyyy/mm/<scope>/"
                            "<ingestion-id>__apim-chargeback.parquet, then an empty manifest.json")
    focus.add_argument("--scope", help="the hubs scope path (default: the billing account id, "
                                       "FOCUS_BILLING_ACCOUNT_ID or the APIM service id)")


def _focus(args: argparse.Namespace, settings: Settings) -> int:
    from shared.adapters.focus_files import focus_csv_text, write_focus_csv, write_focus_parquet, write_hubs_layout
    from shared.composition import price_catalog, subscription_store, table_store
    from shared.services.focus_export import BillingAccount, month_focus

    if args.format == "parquet" and args.out is None and args.hubs_layout is None:
        raise InvalidRequestError("--out", "parquet is binary: name a file with --out (or use --hubs-layout)")
    store = table_store(settings)
    month = parse_month(args.month, datetime.now(UTC))
    account = BillingAccount(settings.focus_billing_account_id, settings.focus_billing_account_name)
    export = month_focus(store, price_catalog(settings, store).current, month, account,
                         subscription_store(settings, store).all())
    if args.hubs_layout is not None:
        written = write_hubs_layout(args.hubs_layout, export.rows, month.date(), args.scope or account.id)
        print(f"FinOps hubs ingestion file: {written} (manifest.json written beside it)", file=sys.stderr)
    if args.out is not None:
        (write_focus_parquet if args.format == "parquet" else write_focus_csv)(args.out, export.rows)
        print(f"wrote {args.out}", file=sys.stderr)
    elif args.hubs_layout is None:  # CSV to stdout (parquet without a file was refused above)
        sys.stdout.write(focus_csv_text(export.rows))
    print(f"FOCUS {export.month:%Y-%m}: {len(export.rows)} rows, BilledCost total {export.billed_total} "
          f"{export.currency}", file=sys.stderr)
    return 0
