"""``GET /api/reconciliation?month=``: the month's Azure bill (its Cost Management export) against the
allocation, per Azure OpenAI account and meter, with the unallocated total and the likely reasons.

The export is read from COST_EXPORT_CONTAINER (the month's latest run, :mod:`shared.core.export_layout`);
the route answers 404 when no container is configured or it holds no export of the month.  It
compares the whole bill with every team's allocation, so it is for unrestricted callers only (a
caller scoped to some subscriptions gets 403).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from shared.adapters.focus_files import ParquetUnavailableError
from shared.api import presenters
from shared.api.contract import error_response
from shared.api.deps import CallerScope, Now, Prices, UsageStore
from shared.api.finops_deps import CostExports
from shared.core.months import MONTH_PATTERN, parse_month
from shared.core.reconcile import DEFAULT_TOLERANCE
from shared.core.reconcile_present import reconciliation_csv, reconciliation_csv_filename, reconciliation_json
from shared.errors import ForbiddenError, InvalidRequestError
from shared.services.reconciliation import NoExportError, month_exports, reconcile_exports

MAX_TOLERANCE = Decimal(1000)
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A bad parameter (named)"}, 401: {"description": "No or bad credentials"},
    403: {"description": "A caller scoped to some subscriptions (the bill covers all of them)"},
    404: {"description": "No export container configured, or no export of the month in it"},
    501: {"description": "The month's export is parquet and this deployment cannot read parquet"}}
router = APIRouter()


def _tolerance(text: str | None) -> Decimal:
    if text is None or not text.strip():
        return DEFAULT_TOLERANCE
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidRequestError("tolerance", f"expected an amount such as 0.01, got {text[:40]!r}") from None
    if not value.is_finite() or not 0 <= value <= MAX_TOLERANCE:
        raise InvalidRequestError("tolerance", f"must be between 0 and {MAX_TOLERANCE}, got {text[:40]!r}")
    return value


@router.get("/api/reconciliation", responses={200: {"content": {"text/csv": {}}}, **ERRORS},
            summary="The month's Azure bill against the allocation, per Azure OpenAI account and meter")
def reconciliation(
    scope: CallerScope,
    now: Now,
    store: UsageStore,
    prices: Prices,
    exports: CostExports,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN,
                                       description="YYYY-MM; default: the current month (UTC)")] = None,
    tolerance: Annotated[str | None, Query(description="differences up to this amount are rounding, shown as 0; "
                                                       f"default {DEFAULT_TOLERANCE}")] = None,
    format: Annotated[str, Query(description="json (default) or csv")] = "json",
) -> Response:
    as_csv = presenters.wants_csv(format)
    allowed = _tolerance(tolerance)
    chosen = parse_month(month, now)
    if scope.restricted:
        raise ForbiddenError(f"{scope.caller} sees only some subscriptions; the reconciliation covers the whole bill")
    if exports is None:
        return error_response(404, "reconciliation is off: COST_EXPORT_CONTAINER names no container of cost exports")
    try:
        report = reconcile_exports(month_exports(exports, chosen, "the cost export container"), store,
                                   prices.current, chosen, allowed)
    except NoExportError as exc:
        return error_response(404, str(exc))
    except ParquetUnavailableError:
        return error_response(501, "the month's export is parquet, which this deployment cannot read (no pyarrow); "
                                   "export CSV instead, or run `chargeback reconcile` with the local extras")
    if as_csv:
        return PlainTextResponse(reconciliation_csv(report), media_type="text/csv",
                                 headers=presenters.attachment(reconciliation_csv_filename(report)))
    return JSONResponse(reconciliation_json(report))
