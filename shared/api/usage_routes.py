"""Usage report routes: ``/api/usage`` and ``/api/health``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from shared.api.pricing_routes import prices
from shared.core.usage import Granularity
from shared.errors import ChargebackError, InvalidRequestError
from shared.services.costing import add_costs, costed_csv, usage_costs
from shared.services.report import parse_usage_query, read_usage, report_json

if TYPE_CHECKING:
    from shared.api.app import AppContext

log = logging.getLogger(__name__)
FROM_HELP = "ISO date or datetime, inclusive; default: start of the current month (UTC)"
TO_HELP = "ISO date (that whole day included) or datetime (exclusive); default: now"


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

    @app.get("/api/usage", dependencies=authorized, summary="Token usage per subscription, model and period",
             responses={200: {"content": {"text/csv": {}}}, 400: {"description": "A bad parameter (named)"},
                        401: {"description": "No or bad credentials"}})
    def usage(
        subscription: Annotated[list[str] | None, Query(description="APIM subscription id; repeat for several")] = None,
        start: Annotated[str | None, Query(alias="from", description=FROM_HELP)] = None,
        end: Annotated[str | None, Query(alias="to", description=TO_HELP)] = None,
        granularity: Annotated[str | None, Query(description="hour, day (default) or month")] = None,
        format: Annotated[str, Query(description="json (default) or csv")] = "json",
    ) -> Response:
        if format not in ("json", "csv"):
            raise InvalidRequestError("format", f"must be json or csv, got {format!r}")
        query = parse_usage_query(subscription, start, end, granularity, context.clock())
        rows = read_usage(context.store, query)
        # cost is added at read time from the price table in force per row date (rows stay token-only)
        table = prices(context)
        costs = usage_costs(rows, context.store, table)
        if format == "csv":
            name = f"usage-{query.start:%Y%m%d}-{query.end:%Y%m%d}-{query.granularity.value}.csv"
            return PlainTextResponse(costed_csv(rows, costs, table), media_type="text/csv",
                                     headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return JSONResponse(add_costs(report_json(query, rows), costs, table))

