"""Cost routes: ``/api/chargeback`` (a month per subscription) and ``/api/prices`` (the price table)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from shared.api import presenters
from shared.api.deps import AUTHORIZED, CallerScope, Now, Prices, UsageStore
from shared.core.months import MONTH_PATTERN, parse_month
from shared.services.costing import monthly_chargeback

router = APIRouter()


@router.get("/api/chargeback", summary="Monthly chargeback: one line per subscription (probe traffic excluded)",
            responses={200: {"content": {"text/csv": {}}}, 400: {"description": "A bad parameter (named)"},
                       401: {"description": "No or bad credentials"}})
def chargeback_report(
    scope: CallerScope,
    now: Now,
    store: UsageStore,
    prices: Prices,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN,
                                       description="YYYY-MM; default: the current month (UTC)")] = None,
    format: Annotated[str, Query(description="json (default) or csv")] = "json",
) -> Response:
    as_csv = presenters.wants_csv(format)
    # a scoped caller: its own subscriptions only, each one partition read
    report = monthly_chargeback(store, prices.current, parse_month(month, now), scope.subscriptions_for(()))
    if as_csv:
        return PlainTextResponse(presenters.chargeback_csv(report), media_type="text/csv",
                                 headers=presenters.attachment(presenters.chargeback_csv_filename(report)))
    return JSONResponse(presenters.chargeback_json(report))


@router.get("/api/prices", dependencies=AUTHORIZED, summary="The price table in force (per 1M tokens)")
def price_table(prices: Prices) -> JSONResponse:
    return JSONResponse(presenters.prices_json(prices.current()))
