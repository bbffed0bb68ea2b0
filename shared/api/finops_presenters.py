"""How the FinOps outputs are written: the FOCUS export (CSV or parquet), the chargeback with its
cost centers (per subscription, or one line per cost center), and subscription directory records.

Money is exact decimal text as everywhere in the API (:mod:`shared.api.presenters`); the FOCUS
files keep FOCUS's own column names and types (:mod:`shared.adapters.focus_files`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from fastapi.responses import Response

from shared.adapters.focus_files import ParquetUnavailableError, focus_csv_text, focus_table
from shared.api import presenters
from shared.api.contract import error_response
from shared.core.cost_centers import UNASSIGNED, SubscriptionDirectory, SubscriptionInfo
from shared.core.cost_lines import UNALLOCATED_CAPACITY
from shared.core.moments import iso
from shared.errors import InvalidRequestError
from shared.services.cost_center_report import CostCenterLine
from shared.services.costing import Chargeback
from shared.services.focus_export import FocusExport

FOCUS_CSV = "focus"
FOCUS_PARQUET = "focus-parquet"
CHARGEBACK_FORMATS = ("json", "csv", FOCUS_CSV, FOCUS_PARQUET)
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
NOT_IMPLEMENTED = 501
CENTER_COLUMNS = ("costCenter", "owner", "businessUnit", "subscriptionName")


def chargeback_format(format: str) -> str:
    """The ``format`` of ``/api/chargeback``: json, csv, focus (FOCUS CSV) or focus-parquet."""
    if format not in CHARGEBACK_FORMATS:
        raise InvalidRequestError("format", f"must be one of {', '.join(CHARGEBACK_FORMATS)}, got {format[:40]!r}")
    return format


# -- FOCUS ------------------------------------------------------------------------------------------
def focus_response(export: FocusExport, format: str) -> Response:
    """The export as a file: CSV (``focus``) or parquet (``focus-parquet``).  Parquet needs pyarrow,
    which the deployed app does not ship (see docs/finops.md): then a 501 says so and names the way out."""
    if format == FOCUS_CSV:
        return Response(focus_csv_text(export.rows), media_type="text/csv",
                        headers=presenters.attachment(export.file_name("csv")))
    try:
        table = focus_table(export.rows)
    except ParquetUnavailableError:
        return error_response(NOT_IMPLEMENTED, "FOCUS parquet is not available here: this deployment does not "
                                               "include pyarrow; ask format=focus (CSV), or write parquet with "
                                               "`chargeback report focus --format parquet`", "format")
    import pyarrow.parquet as pq  # focus_table found pyarrow

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return Response(buffer.getvalue(), media_type=PARQUET_MEDIA_TYPE,
                    headers=presenters.attachment(export.file_name("parquet")))


# -- subscription directory ------------------------------------------------------------------------------
def subscription_json(record: SubscriptionInfo) -> dict[str, object]:
    return {"subscriptionId": record.subscription_id, "displayName": record.display_name, "owner": record.owner,
            "ownerIsManual": record.owner_is_manual, "scope": record.scope, "state": record.state,
            "costCenter": record.effective_cost_center, "businessUnit": record.business_unit or None,
            "tags": dict(sorted(record.tags.items())), "source": record.source.value,
            "updatedAt": iso(record.updated_at) if record.updated_at else None}


# -- chargeback with cost centers --------------------------------------------------------------------------
def _center_fields(subscription_id: str, directory: SubscriptionDirectory) -> dict[str, object]:
    if subscription_id == UNALLOCATED_CAPACITY:
        return {"costCenter": UNALLOCATED_CAPACITY, "owner": None, "businessUnit": None, "subscriptionName": None}
    record = directory.get(subscription_id)
    return {"costCenter": directory.cost_center_of(subscription_id),
            "owner": (record.owner or None) if record else None,
            "businessUnit": (record.business_unit or None) if record else None,
            "subscriptionName": (record.display_name or None) if record else None}


def chargeback_json(report: Chargeback, directory: SubscriptionDirectory) -> dict[str, object]:
    """The chargeback document, each line with its cost center, owner, business unit and name."""
    document = presenters.chargeback_json(report)
    lines = document["subscriptions"]
    assert isinstance(lines, list)
    for line in lines:
        line.update(_center_fields(str(line["subscriptionId"]), directory))
    return document


def _cells(record: Mapping[str, object]) -> dict[str, object]:
    return {key: ";".join(str(v) for v in value) if isinstance(value, list) else value
            for key, value in record.items()}


def chargeback_csv(report: Chargeback, directory: SubscriptionDirectory) -> str:
    """The chargeback CSV's columns, then costCenter, owner, businessUnit, subscriptionName, and the
    service tier last (added after the others, which keep their places)."""
    month = report.month.strftime("%Y-%m")
    document = chargeback_json(report, directory)
    lines = document["subscriptions"]
    assert isinstance(lines, list)
    return presenters.csv_text((*presenters.CHARGEBACK_COLUMNS, *CENTER_COLUMNS, presenters.TIER_COLUMN),
                               (_cells({"month": month, **line}) for line in lines))


COST_CENTER_COLUMNS = ("month", "costCenter", "subscriptions", "owners", "requests", "promptTokens", "cachedTokens",
                       "completionTokens", "totalTokens", "errorRequests", "unmeteredRequests", "cost", "currency",
                       "unpricedTokens", "unpricedModels", *presenters.SPLIT_COLUMNS)


def _center_line(line: CostCenterLine, currency: str) -> dict[str, object]:
    counters = line.counters
    return {"costCenter": line.cost_center, "subscriptions": list(line.subscriptions), "owners": list(line.owners),
            "requests": counters.requests, "promptTokens": counters.prompt_tokens,
            "cachedTokens": counters.cached_tokens, "completionTokens": counters.completion_tokens,
            "totalTokens": counters.total_tokens, "errorRequests": counters.error_requests,
            "unmeteredRequests": counters.unmetered_requests, **presenters.cost_fields(line.cost, currency),
            "unpricedModels": sorted(line.cost.unpriced_models)}


def cost_centers_json(report: Chargeback, lines: list[CostCenterLine]) -> dict[str, object]:
    """``groupBy=costCenter``: one line per cost center (``unassigned``: no cost center recorded;
    ``unallocated-capacity``: idle provisioned capacity), the totals as in the chargeback."""
    document = presenters.chargeback_json(report)
    document.pop("subscriptions")
    return {**document, "groupBy": "costCenter", "unassigned": UNASSIGNED,
            "costCenters": [_center_line(line, report.currency) for line in lines]}


def cost_centers_csv(report: Chargeback, lines: list[CostCenterLine]) -> str:
    month = report.month.strftime("%Y-%m")
    return presenters.csv_text(COST_CENTER_COLUMNS, (_cells({"month": month, **_center_line(line, report.currency)})
                                                     for line in lines))
