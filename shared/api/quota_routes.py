"""Quota and alert routes: ``/api/quotas[/{subscription}]`` and ``/api/alerts``.

Reads take the normal key; quota writes (PUT, DELETE) take the admin key (``ADMIN_API_KEY``) in
``x-api-key`` — checked before the body is even parsed.  With ``API_AUTH=functionkey`` the
Functions host checks the function key first, and writes still need the admin key.  A caller
scoped to some subscriptions (:mod:`shared.api.auth`) reads only their quotas (and the ``*``
default that applies to them) and their alerts.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shared.api.auth import caller_scope
from shared.api.bodies import json_object
from shared.core.access import Scope
from shared.core.alerting import STATUSES, alert_document
from shared.core.quotas import (
    DEFAULT_SUBSCRIPTION,
    Period,
    check_subscription_id,
    parse_period,
    quota_from_body,
    quota_json,
)
from shared.errors import InvalidRequestError, NotAuthorizedError

if TYPE_CHECKING:
    from shared.adapters.alert_outbox import AlertOutboxTable
    from shared.adapters.quota_tables import QuotaTableStore
    from shared.api.app import AppContext
    from shared.ports import OutboxEntry

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


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def entry_json(entry: OutboxEntry) -> dict[str, object]:
    document = alert_document(entry.alert)
    for internal in ("type", "version"):
        document.pop(internal)
    return {**document, "status": entry.status, "attempts": entry.attempts, "lastError": entry.last_error,
            "deliveredChannels": sorted(entry.delivered), "createdAt": _iso(entry.created_at),
            "sentAt": _iso(entry.sent_at)}


def quota_store(context: AppContext) -> QuotaTableStore:
    """The quota store (one per process), also read by the usage summary."""
    from shared.api.pricing_routes import feature_store
    from shared.composition import quota_store as build

    return context.cached("quota_store", lambda settings: build(settings, feature_store(context)))


def register(app: FastAPI, context: AppContext, authorized: list[Any]) -> None:
    from shared.api.pricing_routes import feature_store

    def quotas() -> QuotaTableStore:
        return quota_store(context)

    def outbox() -> AlertOutboxTable:
        from shared.composition import alert_outbox

        return context.cached("alert_outbox", lambda settings: alert_outbox(settings, feature_store(context)))

    def require_admin(request: Request) -> None:
        admin = context.settings.admin_api_key
        if admin is None:
            raise NotAuthorizedError("quota changes are disabled: ADMIN_API_KEY is not configured")
        supplied = request.headers.get("x-api-key", "")
        if not supplied or not hmac.compare_digest(supplied.encode(), admin.encode()):
            raise NotAuthorizedError("quota changes need the admin key in the x-api-key header")

    admin_only = [Depends(require_admin)]
    errors: dict[int | str, dict[str, Any]] = {400: {"description": "A bad parameter or field (named)"},
                                               401: {"description": "No or bad key"}}

    errors[403] = {"description": "A subscription outside the caller's access"}

    @app.get("/api/quotas", summary="Every quota (a scoped caller: its own and the default)", responses=errors)
    def list_quotas(scope: Annotated[Scope, Depends(caller_scope)]) -> JSONResponse:
        visible = [q for q in quotas().all() if q.subscription_id == DEFAULT_SUBSCRIPTION
                   or scope.allows(q.subscription_id)]
        return JSONResponse({"quotas": [quota_json(q) for q in visible]})

    @app.get("/api/quotas/{subscription}", responses=errors,
             summary="A subscription's own quotas and the effective ones (own, else the default *)")
    def get_quota(subscription: str, scope: Annotated[Scope, Depends(caller_scope)]) -> JSONResponse:
        sub = check_subscription_id(subscription)
        if sub != DEFAULT_SUBSCRIPTION:
            scope.check(sub)
        own = quotas().for_subscription(sub)
        defaults = {q.period: q for q in quotas().for_subscription(DEFAULT_SUBSCRIPTION)}
        effective: dict[str, object] = {}
        for period in Period:
            mine = next((q for q in own if q.period is period), None)
            chosen = mine or (defaults.get(period) if sub != DEFAULT_SUBSCRIPTION else None)
            effective[period.value] = None if chosen is None else {
                **quota_json(chosen), "source": "own" if mine else "default"}
        return JSONResponse({"subscriptionId": sub, "quotas": [quota_json(q) for q in own], "effective": effective})

    @app.put("/api/quotas/{subscription}", dependencies=admin_only, responses=errors, openapi_extra={
        "requestBody": QUOTA_BODY}, summary="Create or replace the quota of a subscription (* = default) for a period")
    async def put_quota(subscription: str, request: Request) -> JSONResponse:
        body = await json_object(request, '{"period": "month", "tokens": 1000000}')
        quota = quota_from_body(subscription, body)
        await run_in_threadpool(quotas().put, quota)
        return JSONResponse(quota_json(quota))

    @app.delete("/api/quotas/{subscription}", dependencies=admin_only, responses=errors,
                summary="Delete a subscription's quota for one period, or for both")
    def delete_quota(subscription: str,
                     period: Annotated[str | None, Query(description="day or month; absent = both")] = None,
                     ) -> JSONResponse:
        sub = check_subscription_id(subscription)
        removed = quotas().delete(sub, parse_period(period) if period else None)
        return JSONResponse({"subscriptionId": sub, "deleted": removed})

    @app.get("/api/alerts", responses=errors, summary="Quota alerts, newest first")
    def list_alerts(
        scope: Annotated[Scope, Depends(caller_scope)],
        subscription: Annotated[str | None, Query(description="only this APIM subscription")] = None,
        status: Annotated[str | None, Query(description="pending, sent or failed")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_ALERTS)] = 200,
    ) -> JSONResponse:
        if status is not None and status not in STATUSES:
            raise InvalidRequestError("status", f"must be one of {', '.join(STATUSES)}, got {status!r}")
        sub = check_subscription_id(subscription) if subscription is not None else None
        if sub is not None:
            scope.check(sub)
        visible = scope.subscriptions_for((sub,) if sub else ())
        if visible is None:
            entries = outbox().list_alerts(None, status, limit)
        else:  # one partition per subscription, never a scan of everyone's alerts
            found = [e for name in visible for e in outbox().list_alerts(name, status, limit)]
            entries = sorted(found, key=lambda e: (e.created_at, e.alert.row_key), reverse=True)[:limit]
        return JSONResponse({"alerts": [entry_json(e) for e in entries]})
