"""Quota and alert routes: ``/api/quotas[/{subscription}]`` and ``/api/alerts``.

Reads take the normal key; quota writes (PUT, DELETE) take the admin key (``ADMIN_API_KEY``) in
``x-api-key`` — checked before the body is even parsed.  With ``API_AUTH=functionkey`` the
Functions host checks the function key first, and writes still need the admin key.  A caller
scoped to some subscriptions (:mod:`shared.api.auth`) reads only their quotas (and the ``*``
default that applies to them) and their alerts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shared.api import presenters
from shared.api.bodies import json_object
from shared.api.deps import QUOTA_ADMIN_ONLY, CallerScope, Outbox, Quotas
from shared.core.alerting import STATUSES
from shared.core.quotas import check_subscription_id, parse_period, quota_from_body, quota_json
from shared.errors import InvalidRequestError
from shared.services.quota_views import quota_view, visible_alerts, visible_quotas

MAX_ALERTS = 1000
QUOTA_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["period"], "additionalProperties": False,
        "properties": {"period": {"type": "string", "enum": ["day", "month"]},
                       "tokens": {"type": "integer", "minimum": 1, "description": "token limit"},
                       "cost": {"type": "string", "example": "250.00",
                                "description": "cost limit in the price table's currency (a decimal string)"}}}}},
}
ERRORS: dict[int | str, dict[str, Any]] = {400: {"description": "A bad parameter or field (named)"},
                                           401: {"description": "No or bad key"},
                                           403: {"description": "A subscription outside the caller's access"}}

router = APIRouter()


@router.get("/api/quotas", summary="Every quota (a scoped caller: its own and the default)", responses=ERRORS)
def list_quotas(scope: CallerScope, quotas: Quotas) -> JSONResponse:
    return JSONResponse(presenters.quotas_json(visible_quotas(quotas, scope)))


@router.get("/api/quotas/{subscription}", responses=ERRORS,
            summary="A subscription's own quotas and the effective ones (own, else the default *)")
def get_quota(subscription: str, scope: CallerScope, quotas: Quotas) -> JSONResponse:
    return JSONResponse(presenters.quota_view_json(quota_view(quotas, scope, subscription)))


@router.put("/api/quotas/{subscription}", dependencies=QUOTA_ADMIN_ONLY, responses=ERRORS, openapi_extra={
    "requestBody": QUOTA_BODY}, summary="Create or replace the quota of a subscription (* = default) for a period")
async def put_quota(subscription: str, request: Request, quotas: Quotas) -> JSONResponse:
    body = await json_object(request, '{"period": "month", "tokens": 1000000}')
    quota = quota_from_body(subscription, body)
    await run_in_threadpool(quotas.put, quota)
    return JSONResponse(quota_json(quota))


@router.delete("/api/quotas/{subscription}", dependencies=QUOTA_ADMIN_ONLY, responses=ERRORS,
               summary="Delete a subscription's quota for one period, or for both")
def delete_quota(subscription: str, quotas: Quotas,
                 period: Annotated[str | None, Query(description="day or month; absent = both")] = None,
                 ) -> JSONResponse:
    sub = check_subscription_id(subscription)
    removed = quotas.delete(sub, parse_period(period) if period else None)
    return JSONResponse({"subscriptionId": sub, "deleted": removed})


@router.get("/api/alerts", responses=ERRORS, summary="Quota alerts, newest first")
def list_alerts(
    scope: CallerScope,
    outbox: Outbox,
    subscription: Annotated[str | None, Query(description="only this APIM subscription")] = None,
    status: Annotated[str | None, Query(description="pending, sent or failed")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ALERTS)] = 200,
) -> JSONResponse:
    if status is not None and status not in STATUSES:
        raise InvalidRequestError("status", f"must be one of {', '.join(STATUSES)}, got {status!r}")
    entries = visible_alerts(outbox, scope, subscription, status, limit)
    return JSONResponse({"alerts": [presenters.alert_json(e) for e in entries]})
