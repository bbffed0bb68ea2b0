"""The reconciliation report for people (text), spreadsheets (CSV) and programs (JSON).

Money is exact decimal text in CSV and JSON (never a float, never rounded); the text table rounds
to cents for people, and only there. The ``difference`` column is the *shown* difference (0 within
the tolerance); JSON also carries the exact one.
"""

from __future__ import annotations

from decimal import Decimal

from shared.core.csv_cells import quoted_csv
from shared.core.pricing import display, money_text
from shared.core.reconcile import REASON_TEXT, ReconciliationLine, ReconciliationReport

RECONCILIATION_COLUMNS = ("month", "accountId", "accountName", "meterId", "meterName", "deployments", "currency",
                          "billed", "allocated", "idle", "difference", "shareOfBill", "ratio", "unpricedLines",
                          "reasons")
NUMERIC_COLUMNS = frozenset({"billed", "allocated", "idle", "difference", "shareOfBill", "ratio", "unpricedLines"})


def _percent(share: Decimal | None) -> str:
    return "" if share is None else f"{display(share * 100, 1)}%"


def _line_json(line: ReconciliationLine) -> dict[str, object]:
    return {
        "accountId": line.account_id, "accountName": line.account_name, "meterId": line.meter_id,
        "meterName": line.meter_name, "deployments": list(line.deployments), "tokenKinds": list(line.token_kinds),
        "currency": line.currency, "billed": money_text(line.billed), "allocated": money_text(line.allocated),
        "idle": money_text(line.idle), "difference": money_text(line.shown_difference),
        "exactDifference": money_text(line.difference),
        "shareOfBill": None if line.share_of_bill is None else format(line.share_of_bill, "f"),
        "ratio": None if line.ratio is None else format(line.ratio, "f"), "unpricedLines": line.unpriced_lines,
        "reasons": [reason.value for reason in line.reasons],
    }


def reconciliation_json(report: ReconciliationReport) -> dict[str, object]:
    return {
        "month": report.month.strftime("%Y-%m"),
        "currency": report.currency,
        "tolerance": money_text(report.tolerance),
        "lines": [_line_json(line) for line in report.lines],
        "totals": {
            "billed": money_text(report.total_billed), "allocated": money_text(report.total_allocated),
            "idle": money_text(report.total_idle), "unallocated": money_text(report.total_unallocated),
            "difference": money_text(report.total_difference), "unpricedLines": report.unpriced_lines,
        },
        "systematicRatio": None if report.systematic_ratio is None else format(report.systematic_ratio, "f"),
        "accountsNotInLogs": list(report.accounts_not_in_logs),
        "reasons": {reason.value: text for reason, text in REASON_TEXT.items()},
        "notes": list(report.notes),
    }


def reconciliation_csv(report: ReconciliationReport) -> str:
    """One line per (account, meter); every field quoted; numbers exact and never neutralised."""
    month = report.month.strftime("%Y-%m")
    records = []
    for line in report.lines:
        record = _line_json(line)
        records.append({**record, "month": month, "deployments": ";".join(line.deployments),
                        "reasons": ";".join(reason.value for reason in line.reasons)})
    return quoted_csv(RECONCILIATION_COLUMNS, records, numeric=NUMERIC_COLUMNS)


def reconciliation_csv_filename(report: ReconciliationReport) -> str:
    return f"reconciliation-{report.month:%Y-%m}.csv"


def reconciliation_text(report: ReconciliationReport) -> str:
    """A table for people: one line per account and meter, totals, and what the reasons mean."""
    currency = report.currency or ""
    header = (f"{'account':<22}{'meter':<34}{'billed':>12}{'allocated':>12}{'idle':>10}{'difference':>12}"
              f"{'share':>8}  reasons")
    out = [f"reconciliation {report.month:%Y-%m} ({currency}; differences within {display(report.tolerance)} "
           "shown as 0)", header, "-" * len(header)]
    for line in report.lines:
        account = (line.account_name or "(no account)")[:21]
        meter = (line.meter_name or line.meter_id or "(no meter)")[:33]
        out.append(f"{account:<22}{meter:<34}{display(line.billed):>12}{display(line.allocated):>12}"
                   f"{display(line.idle):>10}{display(line.shown_difference):>12}{_percent(line.share_of_bill):>8}"
                   f"  {', '.join(reason.value for reason in line.reasons)}")
    out.append("-" * len(header))
    out.append(f"{'TOTAL':<56}{display(report.total_billed):>12}{display(report.total_allocated):>12}"
               f"{display(report.total_idle):>10}{display(report.total_difference):>12}")
    out.append(f"unallocated (billed, carried by no team): {display(report.total_unallocated)} {currency}")
    if report.systematic_ratio is not None:
        out.append(f"systematic billed/list ratio: {report.systematic_ratio} (a negotiated price or currency)")
    if report.unpriced_lines:
        out.append(f"unpriced cost lines (not in allocated): {report.unpriced_lines}")
    for account in report.accounts_not_in_logs:
        out.append(f"billed but never seen in the gateway logs: {account}")
    out.extend(f"note: {note}" for note in report.notes)
    used = sorted({reason for line in report.lines for reason in line.reasons})
    out.extend(f"  {reason.value}: {REASON_TEXT[reason]}" for reason in used)
    return "\n".join(out)
