"""Access grants: ``GET /api/access/me`` (any caller) and the admin API ``GET /api/access``,
``PUT /api/access/{principal}``, ``DELETE /api/access/{principal}``.

Admin = ``ADMIN_API_KEY`` in ``x-api-key``, or a trusted principal (``TRUST_APP_SERVICE_AUTH``)
whose grant has the role ``admin``.  Also ``chargeback access grant|revoke|list``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shared.api import presenters
from shared.api.bodies import json_object
from shared.api.deps import ACCESS_ADMIN_ONLY, CallerScope, Grants
from shared.core.access import MAX_PRINCIPAL, grant_from_body, grant_json, normalize_principal

# An object id or UPN: printable, 1-256 characters (what normalize_principal accepts), in the schema too.
PRINCIPAL = Path(description="Entra ID object id or user principal name (case-insensitive)",
                 pattern=r"^\s*[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]*$", max_length=MAX_PRINCIPAL)
GRANT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False,
        "properties": {"role": {"type": "string", "enum": ["admin", "reader"], "default": "reader"},
                       "subscriptions": {"type": "array", "items": {"type": "string"},
                                         "description": "APIM subscription ids a reader sees"}}}}},
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A bad parameter or field (named)"}, 401: {"description": "No or bad admin credentials"},
    403: {"description": "A principal that is not an admin"}}


router = APIRouter()


@router.get("/api/access/me", responses=ERRORS, summary="The caller's own access: every subscription or a list")
def me(scope: CallerScope) -> JSONResponse:
    return JSONResponse(presenters.scope_json(scope))


@router.get("/api/access", dependencies=ACCESS_ADMIN_ONLY, responses=ERRORS, summary="Every access grant (admin)")
def list_grants(grants: Grants) -> JSONResponse:
    return JSONResponse({"grants": [grant_json(g) for g in grants.all()]})


@router.put("/api/access/{principal}", dependencies=ACCESS_ADMIN_ONLY, responses=ERRORS,
            openapi_extra={"requestBody": GRANT_BODY},
            summary="Create or replace a principal's grant (object id or UPN): reader of subscriptions, or admin")
async def put_grant(principal: Annotated[str, PRINCIPAL], request: Request, grants: Grants) -> JSONResponse:
    body = await json_object(request, '{"subscriptions": ["team-a"]}')
    grant = grant_from_body(principal, body)
    await run_in_threadpool(grants.put, grant)
    return JSONResponse(grant_json(grant))


@router.delete("/api/access/{principal}", dependencies=ACCESS_ADMIN_ONLY, responses=ERRORS,
               summary="Remove a principal's grant (it then sees nothing)")
def delete_grant(principal: Annotated[str, PRINCIPAL], grants: Grants) -> JSONResponse:
    name = normalize_principal(principal)
    return JSONResponse({"principal": name, "deleted": grants.delete(name)})
