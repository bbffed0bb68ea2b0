"""Usage report routes: ``/api/usage``, ``/api/usage/{subscription}/summary`` and ``/api/health``.

The usage CSV is streamed: rows are written as storage pages are read (memory independent of the
range).  Its header and first rows are produced before the response starts, so a request refused
or failing early still gets a clean error response; a storage failure later ends the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import chain
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from shared.api import presenters
from shared.api.deps import (
    CallerScope,
    Context,
    KeptReports,
    Now,
    Prices,
    Quotas,
    TokenKey,
    UsageReads,
    UsageStore,
)
from shared.api.finops_deps import Subscriptions
from shared.core.months import MONTH_PATTERN, parse_month
from shared.core.quotas import MAX_SUBSCRIPTION_ID, check_subscription_id
from shared.services.cost_center_report import cost_center_lookup
from shared.services.health import pipeline_health
from shared.services.month_csv import usage_csv
from shared.services.report import DEFAULT_PAGE_SIZE, MAX_FILTER_VALUES, MAX_PAGE_SIZE
from shared.services.summary import subscription_summary
from shared.services.usage_report import UsageRequest, usage_report

FROM_HELP = "ISO date or datetime, inclusive; default: start of the current month (UTC)"
TO_HELP = "ISO date (that whole day included) or datetime (exclusive); default: now"
NAME_PATTERN = r"^\s*[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]*$"  # what check_subscription_id accepts
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A bad parameter (named)"}, 401: {"description": "No or bad credentials"},
    403: {"description": "A subscription (or page token) outside the caller's access"}}

FILTER_HELP = f"repeat or comma-separate for several (at most {MAX_FILTER_VALUES} values)"

log = logging.getLogger(__name__)
router = APIRouter()


def streamed_csv(chunks: Iterator[str], filename: str) -> StreamingResponse:
    """A CSV attachment streamed from ``chunks``; the first is produced here (before any byte is sent)."""
    first = next(chunks)

    def logged() -> Iterator[str]:
        try:
            yield from chunks
        except Exception:
            log.exception("the CSV %s stopped part way; the response ends truncated", filename)
            raise

    return StreamingResponse(chain([first], logged()), media_type="text/csv",
                             headers=presenters.attachment(filename))


@router.get("/api/health", summary="Storage reachability and rollup lag: 200 ok, 503 degraded or unavailable")
def health(context: Context) -> JSONResponse:
    from shared.adapters.pipeline_state import PipelineStateTable  # first health request only

    # stores are built inside the check: one that cannot be built is "unavailable" too
    report = pipeline_health(lambda: context.tables, lambda: PipelineStateTable(context.tables),
                             context.settings.rollup_max_lag, context.clock())
    return JSONResponse(report.document(), status_code=report.http_status)


@router.get("/api/usage", summary="Token usage and cost per period, grouped by subscription, model, ...",
            responses={200: {"content": {"text/csv": {}}}, **ERRORS})
def usage(
    scope: CallerScope,
    now: Now,
    store: UsageStore,
    pages: UsageReads,
    prices: Prices,
    token_key: TokenKey,
    directory: Subscriptions,
    kept_reports: KeptReports,
    subscription: Annotated[list[str] | None, Query(
        description=f"APIM subscription id; {FILTER_HELP}")] = None,
    product: Annotated[list[str] | None, Query(description=f"only these APIM products; {FILTER_HELP}")] = None,
    model: Annotated[list[str] | None, Query(description=f"only these models; {FILTER_HELP}")] = None,
    deployment: Annotated[list[str] | None, Query(description=f"only these deployments; {FILTER_HELP}")] = None,
    apim_service: Annotated[list[str] | None, Query(
        alias="apimService", description=f"only these APIM services (gateways; case-insensitive); {FILTER_HELP}",
    )] = None,
    start: Annotated[str | None, Query(alias="from", description=FROM_HELP)] = None,
    end: Annotated[str | None, Query(alias="to", description=TO_HELP)] = None,
    granularity: Annotated[str | None, Query(description="hour, day (default) or month")] = None,
    group_by: Annotated[list[str] | None, Query(
        alias="groupBy", description="any of subscription, product, model, deployment, costCenter, apimService, "
                                     "serviceTier (repeat or comma-separate); rows are summed over the others; "
                                     "default: subscription, product, model, deployment; grouping by subscription "
                                     "groups by apimService (the gateway) too, grouping by deployment groups by "
                                     "serviceTier (priority or \"\") too")] = None,
    page_size: Annotated[int | None, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE,
                                           description=f"rows per page (JSON): default {DEFAULT_PAGE_SIZE}, "
                                                       f"max {MAX_PAGE_SIZE}")] = None,
    next_token: Annotated[str | None, Query(alias="next", description="the `next` token of the previous "
                                                                      "page; other parameters unchanged")] = None,
    format: Annotated[str, Query(description="json (default, paged) or csv (every row, streamed)")] = "json",
) -> Response:
    as_csv = presenters.wants_csv(format)
    request = UsageRequest(subscription, product, model, deployment, start, end, granularity, group_by, page_size,
                           next_token, apim_service)
    cost_centers = cost_center_lookup(directory)  # the directory is read only for groupBy=costCenter
    if as_csv:
        csv = usage_csv(request, scope, now, store, pages, prices.current_with_fingerprint, presenters.usage_csv,
                        kept=kept_reports, cost_center_of=cost_centers)
        return streamed_csv(csv.chunks, presenters.usage_csv_filename(csv))
    report = usage_report(request, scope, now, store, pages, prices.current, token_key, presenters.usage_totals,
                          cost_center_of=cost_centers)
    return JSONResponse(presenters.usage_json(report))


@router.get("/api/usage/{subscription}/summary", responses=ERRORS,
            summary="One subscription's month: totals, cost, quota use, unmetered calls, top models, days")
def summary(
    subscription: Annotated[str, Path(max_length=MAX_SUBSCRIPTION_ID, pattern=NAME_PATTERN)],
    scope: CallerScope,
    context: Context,
    now: Now,
    store: UsageStore,
    prices: Prices,
    quotas: Quotas,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN,
                                       description="YYYY-MM; default: the current month (UTC)")] = None,
) -> JSONResponse:
    sub = check_subscription_id(subscription)
    scope.check(sub)
    result = subscription_summary(store, prices.current, quotas, context.settings.alert_thresholds, sub,
                                  parse_month(month, now), now)
    return JSONResponse(presenters.summary_json(result))
