"""Access grants: ``GET /api/access/me`` (any caller) and the admin API ``GET /api/access``,
``PUT /api/access/{principal}``, ``DELETE /api/access/{principal}``.

Admin = ``ADMIN_API_KEY`` in ``x-api-key``, or a trusted principal (``TRUST_APP_SERVICE_AUTH``)
whose grant has the role ``admin``.  Also ``chargeback access grant|revoke|list``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shared.api.auth import access_store, caller_scope, require_access_admin
from shared.api.bodies import json_object
from shared.core.access import MAX_PRINCIPAL, Scope, grant_from_body, grant_json, normalize_principal

if TYPE_CHECKING:
    from shared.api.app import AppContext

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


def register(app: FastAPI, context: AppContext, authorized: list[Any]) -> None:
    def admin(request: Request) -> None:
        require_access_admin(context, request)

    admin_only = [Depends(admin)]

    @app.get("/api/access/me", responses=ERRORS, summary="The caller's own access: every subscription or a list")
    def me(scope: Annotated[Scope, Depends(caller_scope)]) -> JSONResponse:
        return JSONResponse({"caller": scope.caller, "admin": scope.admin, "allSubscriptions": not scope.restricted,
                             "subscriptions": None if scope.subscriptions is None else sorted(scope.subscriptions)})

    @app.get("/api/access", dependencies=admin_only, responses=ERRORS, summary="Every access grant (admin)")
    def list_grants() -> JSONResponse:
        return JSONResponse({"grants": [grant_json(g) for g in access_store(context).all()]})

    @app.put("/api/access/{principal}", dependencies=admin_only, responses=ERRORS,
             openapi_extra={"requestBody": GRANT_BODY},
             summary="Create or replace a principal's grant (object id or UPN): reader of subscriptions, or admin")
    async def put_grant(principal: Annotated[str, PRINCIPAL], request: Request) -> JSONResponse:
        body = await json_object(request, '{"subscriptions": ["team-a"]}')
        grant = grant_from_body(principal, body)
        await run_in_threadpool(access_store(context).put, grant)
        return JSONResponse(grant_json(grant))

    @app.delete("/api/access/{principal}", dependencies=admin_only, responses=ERRORS,
                summary="Remove a principal's grant (it then sees nothing)")
    def delete_grant(principal: Annotated[str, PRINCIPAL]) -> JSONResponse:
        name = normalize_principal(principal)
        return JSONResponse({"principal": name, "deleted": access_store(context).delete(name)})
