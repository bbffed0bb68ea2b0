"""The APIM subscription directory: ``GET /api/subscriptions`` and ``PUT /api/subscriptions/{subscription}``.

What finance files each APIM subscription under: display name, owner, scope and state (from ARM,
``chargeback subscriptions sync``) and the cost center, business unit, owner and tags a person sets
(here, or ``chargeback subscriptions set``).  Reads take the normal key and show a scoped caller
its own subscriptions only; a write takes ``ADMIN_API_KEY`` in ``x-api-key`` (or an admin
principal), checked before the body is read, and touches only the fields a person owns.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shared.api.auth import AdminRule, require_admin
from shared.api.bodies import json_object
from shared.api.deps import CallerScope, Context, Now
from shared.api.finops_deps import Subscriptions
from shared.api.finops_presenters import subscription_json
from shared.core.cost_centers import MAX_SUBSCRIPTION_ID
from shared.errors import InvalidRequestError
from shared.services.subscription_info import list_subscriptions, set_subscription_info

COST_CENTER_ADMIN = AdminRule(True, "cost center changes need an admin: ADMIN_API_KEY is not configured and the "
                                    "caller is no trusted admin principal",
                              "cost center changes need the admin key in the x-api-key header (or an admin principal)")
FIELDS = {"costCenter": "cost_center", "businessUnit": "business_unit", "owner": "owner", "tags": "tags"}
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"
ERRORS: dict[int | str, dict[str, Any]] = {400: {"description": "A bad parameter or field (named)"},
                                           401: {"description": "No or bad key"},
                                           403: {"description": "Not an admin"}}
BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": False, "minProperties": 1,
    "properties": {"costCenter": {"type": "string", "maxLength": 128, "example": "CC-4711",
                                  "description": "\"\" clears it (unassigned)"},
                   "businessUnit": {"type": "string", "maxLength": 128, "example": "Retail"},
                   "owner": {"type": "string", "maxLength": 256, "example": "search-team@contoso.com",
                             "description": "\"\" drops the manual owner (ARM's applies again)"},
                   "tags": {"type": "object", "additionalProperties": {"type": "string"},
                            "description": "replaces every tag ({} clears them)"}}}}}}

router = APIRouter()


def _cost_center_admin(request: Request, context: Context) -> None:
    require_admin(context.settings, request.headers, COST_CENTER_ADMIN, context.access_store)


@router.get("/api/subscriptions", responses=ERRORS,
            summary="The subscription directory: display name, owner, cost center, business unit and tags")
def subscriptions(
    scope: CallerScope,
    store: Subscriptions,
    cost_center: Annotated[str | None, Query(alias="costCenter", max_length=128,
                                             description="only this cost center (`unassigned`: none set)")] = None,
) -> JSONResponse:
    records = [r for r in list_subscriptions(store, cost_center=cost_center) if scope.allows(r.subscription_id)]
    return JSONResponse({"subscriptions": [subscription_json(record) for record in records]})


@router.put("/api/subscriptions/{subscription}", dependencies=[Depends(_cost_center_admin)], responses=ERRORS,
            openapi_extra={"requestBody": BODY},
            summary="Set a subscription's cost center, business unit, owner and/or tags (fields left out stay)")
async def put_subscription(
    subscription: Annotated[str, Path(max_length=MAX_SUBSCRIPTION_ID, pattern=NAME_PATTERN)],
    request: Request,
    now: Now,
    store: Subscriptions,
) -> JSONResponse:
    body = await json_object(request, '{"costCenter": "CC-4711", "owner": "search-team@contoso.com"}')
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidRequestError(unknown[0][:80], f"is not a field of a subscription record; "
                                                   f"expected any of {', '.join(FIELDS)}")
    if not body:
        raise InvalidRequestError("body", f"nothing to set: give any of {', '.join(FIELDS)}")
    for name in ("costCenter", "businessUnit", "owner"):
        if name in body and not isinstance(body[name], str):
            raise InvalidRequestError(name, "must be text")
    if "tags" in body and not isinstance(body["tags"], dict):
        raise InvalidRequestError("tags", 'must be an object of tag names to text values, like {"env": "prod"}')
    changes = {FIELDS[name]: value for name, value in body.items()}
    record = await run_in_threadpool(lambda: set_subscription_info(store, subscription, now=now, **changes))
    return JSONResponse(subscription_json(record))
