"""Spend anomalies: ``GET /api/anomalies`` (a scoped caller sees its own subscriptions' only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from shared.api import presenters
from shared.api.deps import CallerScope, Now, Outbox
from shared.core.moments import iso
from shared.services.anomalies import anomaly_range, visible_anomalies

MAX_ANOMALIES = 1000
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A bad parameter (named)"}, 401: {"description": "No or bad credentials"},
    403: {"description": "A subscription outside the caller's access"}}
router = APIRouter()


@router.get("/api/anomalies", responses=ERRORS,
            summary="Spend anomalies: days whose cost was far above the subscription's trailing 28 days")
def list_anomalies(
    scope: CallerScope,
    outbox: Outbox,
    now: Now,
    subscription: Annotated[str | None, Query(description="only this APIM subscription")] = None,
    start: Annotated[str | None, Query(alias="from", description="ISO date or datetime, inclusive; "
                                                                 "default: 30 days before `to`")] = None,
    end: Annotated[str | None, Query(alias="to", description="ISO date (that day included) or datetime "
                                                             "(exclusive); default: now")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ANOMALIES)] = 200,
) -> JSONResponse:
    begin, finish = anomaly_range(start, end, now)
    entries = visible_anomalies(outbox, scope, subscription, begin, finish, limit)
    return JSONResponse({"from": iso(begin), "to": iso(finish),
                         "anomalies": [presenters.alert_json(e) for e in entries]})
