"""Cost routes: ``/api/chargeback`` (a month per subscription) and ``/api/prices`` (the price table).

Also provides :func:`prices` and :func:`feature_store` for the other routes (usage rows get their
cost from the same catalog).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from shared.api.auth import caller_scope
from shared.core.access import Scope
from shared.core.pricing import PriceTable, money_text
from shared.errors import InvalidRequestError
from shared.services.costing import MONTH_PATTERN, chargeback, chargeback_csv, chargeback_json, parse_month

if TYPE_CHECKING:
    from shared.adapters.tables import TableStore
    from shared.api.app import AppContext


def feature_store(context: AppContext) -> TableStore | None:
    """The usage store when it is a real ``TableStore`` (its client is shared by the feature tables)."""
    from shared.adapters.tables import TableStore

    store = context.store
    return store if isinstance(store, TableStore) else None


def prices(context: AppContext) -> PriceTable:
    """The current price table (file parsed once per change, table overrides read per call)."""
    from shared.composition import price_catalog

    catalog = context.cached("price_catalog", lambda settings: price_catalog(settings, feature_store(context)))
    return catalog.current()


def register(app: FastAPI, context: AppContext, authorized: list[Any]) -> None:
    @app.get("/api/chargeback", summary="Monthly chargeback: one line per subscription (probe traffic excluded)",
             responses={200: {"content": {"text/csv": {}}}, 400: {"description": "A bad parameter (named)"},
                        401: {"description": "No or bad credentials"}})
    def chargeback_report(
        scope: Annotated[Scope, Depends(caller_scope)],
        month: Annotated[str | None, Query(pattern=MONTH_PATTERN,
                                           description="YYYY-MM; default: the current month (UTC)")] = None,
        format: Annotated[str, Query(description="json (default) or csv")] = "json",
    ) -> Response:
        if format not in ("json", "csv"):
            raise InvalidRequestError("format", f"must be json or csv, got {format!r}")
        start = parse_month(month, context.clock())
        table = prices(context)
        # a scoped caller: its own subscriptions only, each one partition read
        lines = chargeback(context.store, table, start, scope.subscriptions_for(()))
        if format == "csv":
            return PlainTextResponse(chargeback_csv(start, lines, table), media_type="text/csv", headers={
                "Content-Disposition": f'attachment; filename="chargeback-{start:%Y-%m}.csv"'})
        return JSONResponse(chargeback_json(start, lines, table))

    @app.get("/api/prices", dependencies=authorized, summary="The price table in force (per 1M tokens)")
    def price_table() -> JSONResponse:
        table = prices(context)
        return JSONResponse({
            "currency": table.currency,
            "unit": "per 1M tokens",
            "source": table.source,
            "prices": [{"model": p.model, "effectiveFrom": p.effective_from.isoformat(), "input": money_text(p.input),
                        "cachedInput": money_text(p.cached_input), "output": money_text(p.output)}
                       for p in sorted(table.prices, key=lambda p: (p.model.lower(), p.effective_from))],
            "prefixRules": [{"prefix": r.prefix, "model": r.model} for r in table.prefix_rules],
        })
