"""Cost routes: ``/api/chargeback`` (a month per subscription, per cost center, or as a FOCUS 1.2
export) and ``/api/prices`` (the price table)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from shared.api import finops_presenters, presenters
from shared.api.deps import AUTHORIZED, CallerScope, Context, Now, Prices, UsageStore
from shared.api.finops_deps import Subscriptions
from shared.core.cost_centers import SubscriptionDirectory
from shared.core.months import MONTH_PATTERN, parse_month
from shared.errors import InvalidRequestError
from shared.services.cost_center_report import chargeback_by_cost_center
from shared.services.costing import monthly_chargeback
from shared.services.focus_export import BillingAccount, month_focus

FORMAT_HELP = ("json (default), csv, focus (FOCUS 1.2 CSV: one row per subscription, deployment, meter kind and "
               "day, plus PTU hours) or focus-parquet")
router = APIRouter()


@router.get("/api/chargeback", summary="Monthly chargeback: one line per subscription (probe traffic excluded)",
            responses={200: {"content": {"text/csv": {}, finops_presenters.PARQUET_MEDIA_TYPE: {}}},
                       400: {"description": "A bad parameter (named)"},
                       401: {"description": "No or bad credentials"},
                       501: {"description": "format=focus-parquet where the deployment has no parquet writer"}})
def chargeback_report(
    scope: CallerScope,
    context: Context,
    now: Now,
    store: UsageStore,
    prices: Prices,
    subscriptions: Subscriptions,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN,
                                       description="YYYY-MM; default: the current month (UTC)")] = None,
    format: Annotated[str, Query(description=FORMAT_HELP)] = "json",
    group_by: Annotated[str | None, Query(alias="groupBy", description="costCenter: one line per cost center "
                                                                       "(json and csv)")] = None,
) -> Response:
    chosen_format = finops_presenters.chargeback_format(format)
    if group_by is not None and group_by.strip().lower() != "costcenter":
        raise InvalidRequestError("groupBy", f"must be costCenter, got {group_by[:40]!r}")
    chosen = parse_month(month, now)
    scoped = scope.subscriptions_for(())  # a scoped caller: its own subscriptions only, each one partition read
    if chosen_format in (finops_presenters.FOCUS_CSV, finops_presenters.FOCUS_PARQUET):
        if group_by is not None:
            raise InvalidRequestError("groupBy", "a FOCUS export is not grouped: every row carries x_CostCenter")
        settings = context.settings
        account = BillingAccount(settings.focus_billing_account_id, settings.focus_billing_account_name)
        export = month_focus(store, prices.current, chosen, account, subscriptions.all(), scoped)
        return finops_presenters.focus_response(export, chosen_format)
    report = monthly_chargeback(store, prices.current, chosen, scoped)
    directory = SubscriptionDirectory(subscriptions.all())
    as_csv = chosen_format == "csv"
    if group_by is not None:
        lines = chargeback_by_cost_center(report, directory)
        if as_csv:
            return PlainTextResponse(finops_presenters.cost_centers_csv(report, lines), media_type="text/csv",
                                     headers=presenters.attachment(f"chargeback-{report.month:%Y-%m}-cost-centers.csv"))
        return JSONResponse(finops_presenters.cost_centers_json(report, lines))
    if as_csv:
        return PlainTextResponse(finops_presenters.chargeback_csv(report, directory), media_type="text/csv",
                                 headers=presenters.attachment(presenters.chargeback_csv_filename(report)))
    return JSONResponse(finops_presenters.chargeback_json(report, directory))


@router.get("/api/prices", dependencies=AUTHORIZED, summary="The price table in force (per 1M tokens)")
def price_table(prices: Prices) -> JSONResponse:
    return JSONResponse(presenters.prices_json(prices.current()))
