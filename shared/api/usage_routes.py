"""Usage report routes: ``/api/usage``, ``/api/usage/{subscription}/summary`` and ``/api/health``."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Path, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from shared.api.auth import caller_scope
from shared.api.pricing_routes import prices
from shared.api.quota_routes import quota_store
from shared.core.access import Scope
from shared.core.paging import TOKEN_TTL, PageToken, check_binding, open_token, query_digest, seal
from shared.core.quotas import MAX_SUBSCRIPTION_ID, check_subscription_id
from shared.core.usage import Granularity
from shared.errors import ChargebackError, InvalidRequestError
from shared.services.costing import MONTH_PATTERN, parse_month, usage_costs
from shared.services.report import (
    MAX_PAGE_SIZE,
    UsageQuery,
    group_rows,
    grouped_csv,
    grouped_report_json,
    page_after,
    parse_page_size,
    parse_usage_query,
    read_usage,
)
from shared.services.summary import subscription_summary

if TYPE_CHECKING:
    from shared.api.app import AppContext

log = logging.getLogger(__name__)
FROM_HELP = "ISO date or datetime, inclusive; default: start of the current month (UTC)"
TO_HELP = "ISO date (that whole day included) or datetime (exclusive); default: now"
NAME_PATTERN = r"^\s*[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]*$"  # what check_subscription_id accepts
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A bad parameter (named)"}, 401: {"description": "No or bad credentials"},
    403: {"description": "A subscription (or page token) outside the caller's access"}}


def _digest(query: UsageQuery, start: str | None, end: str | None) -> str:
    """The page-token binding: the parameters as asked (``from``/``to`` as given, so a defaulted
    "now" does not change between pages: the token pins the resolved window instead)."""
    return query_digest({"subscription": sorted(query.subscriptions), "product": sorted(query.products),
                         "model": sorted(query.models), "deployment": sorted(query.deployments),
                         "from": (start or "").strip(), "to": (end or "").strip(),
                         "granularity": query.granularity.value, "groupBy": list(query.group_by)})


def register(app: FastAPI, context: AppContext, authorized: list[Any]) -> None:
    @app.get("/api/health", summary="Liveness and storage reachability")
    def health() -> JSONResponse:
        try:
            # A one-partition read that returns nothing: proves the table answers, costs nothing.
            context.store.read("health-check", Granularity.MONTH, datetime(2000, 1, 1, tzinfo=UTC),
                               datetime(2000, 2, 1, tzinfo=UTC))
        except ChargebackError as exc:
            log.warning("health check: %s", exc)
            return JSONResponse({"status": "degraded", "storage": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "storage": "ok"})

    @app.get("/api/usage", summary="Token usage and cost per period, grouped by subscription, model, ...",
             responses={200: {"content": {"text/csv": {}}}, **ERRORS})
    def usage(
        scope: Annotated[Scope, Depends(caller_scope)],
        subscription: Annotated[list[str] | None, Query(
            description="APIM subscription id; repeat or comma-separate for several")] = None,
        product: Annotated[list[str] | None, Query(description="only these APIM products")] = None,
        model: Annotated[list[str] | None, Query(description="only these models")] = None,
        deployment: Annotated[list[str] | None, Query(description="only these deployments")] = None,
        start: Annotated[str | None, Query(alias="from", description=FROM_HELP)] = None,
        end: Annotated[str | None, Query(alias="to", description=TO_HELP)] = None,
        granularity: Annotated[str | None, Query(description="hour, day (default) or month")] = None,
        group_by: Annotated[list[str] | None, Query(
            alias="groupBy", description="any of subscription, product, model, deployment (repeat or "
                                         "comma-separate); rows are summed over the others; default: all")] = None,
        page_size: Annotated[int | None, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE,
                                               description="rows per page (JSON): default 1000, max 5000")] = None,
        next_token: Annotated[str | None, Query(alias="next", description="the `next` token of the previous "
                                                                          "page; other parameters unchanged")] = None,
        format: Annotated[str, Query(description="json (default, paged) or csv (every row)")] = "json",
    ) -> Response:
        if format not in ("json", "csv"):
            raise InvalidRequestError("format", f"must be json or csv, got {format!r}")
        now = context.clock()
        size = parse_page_size(page_size)
        query = parse_usage_query(subscription, start, end, granularity, now, products=product, models=model,
                                  deployments=deployment, group_by=group_by)
        digest = _digest(query, start, end)
        after: tuple[str, ...] | None = None
        if next_token:
            if format == "csv":
                raise InvalidRequestError("next", "CSV is never paged: ask without a page token")
            token = open_token(context.settings.page_token_key, next_token, now)
            check_binding(token, digest, scope.digest())
            query, after = replace(query, start=token.start, end=token.end), token.after
        rows = read_usage(context.store, query, scope)
        # cost is added at read time from the price table in force per row date (rows stay token-only)
        table = prices(context)
        grouped = group_rows(rows, usage_costs(rows, context.store, table), query.group_by)
        if format == "csv":
            name = f"usage-{query.start:%Y%m%d}-{query.end:%Y%m%d}-{query.granularity.value}.csv"
            return PlainTextResponse(grouped_csv(query, grouped, table.currency), media_type="text/csv",
                                     headers={"Content-Disposition": f'attachment; filename="{name}"'})
        page, more = page_after(grouped, after, size)
        following = None
        if more:
            following = seal(context.settings.page_token_key, PageToken(
                digest, scope.digest(), query.start, query.end, page[-1].sort_key(), now + TOKEN_TTL))
        return JSONResponse(grouped_report_json(query, grouped, page, table.currency, size, following))

    @app.get("/api/usage/{subscription}/summary", responses=ERRORS,
             summary="One subscription's month: totals, cost, quota use, unmetered calls, top models, days")
    def summary(
        subscription: Annotated[str, Path(max_length=MAX_SUBSCRIPTION_ID, pattern=NAME_PATTERN)],
        scope: Annotated[Scope, Depends(caller_scope)],
        month: Annotated[str | None, Query(pattern=MONTH_PATTERN,
                                           description="YYYY-MM; default: the current month (UTC)")] = None,
    ) -> JSONResponse:
        sub = check_subscription_id(subscription)
        scope.check(sub)
        now = context.clock()
        return JSONResponse(subscription_summary(context.store, prices(context), quota_store(context),
                                                 context.settings.alert_thresholds, sub, parse_month(month, now),
                                                 now))
