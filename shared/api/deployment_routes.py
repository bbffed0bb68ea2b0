"""Deployment catalog routes: ``GET /api/deployments``, ``GET /api/deployments/{name}`` (its history) and
``PUT /api/deployments/{name}`` (a manual version, admin key only).

Reads take the normal key; a write takes ``ADMIN_API_KEY`` in ``x-api-key`` (checked before the
body is read).  A write is effective from its ``from`` moment (default: now) and re-prices every
report from then on; this process's pricing forgets its cached catalog at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shared.api.auth import AdminRule, require_admin
from shared.api.bodies import json_object
from shared.api.deps import AUTHORIZED, Context, Now
from shared.core.deployments import DeploymentCatalog, DeploymentRepository
from shared.errors import InvalidRequestError
from shared.services.pricing_admin import deployment_from_body, deployment_json, set_deployment

PRICING_ADMIN = AdminRule(False, "pricing changes are disabled: ADMIN_API_KEY is not configured",
                          "pricing changes need the admin key in the x-api-key header")
ERRORS: dict[int | str, dict[str, Any]] = {400: {"description": "A bad parameter or field (named)"},
                                           401: {"description": "No or bad key"},
                                           404: {"description": "No such deployment"}}
BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["model", "version", "sku", "region"], "additionalProperties": False,
    "properties": {"model": {"type": "string", "example": "gpt-4o"},
                   "version": {"type": "string", "example": "2024-08-06"},
                   "sku": {"type": "string", "example": "DataZoneStandard"},
                   "region": {"type": "string", "example": "eastus2"},
                   "ptu": {"type": "integer", "minimum": 1, "description": "PTUs of a provisioned SKU"},
                   "from": {"type": "string", "example": "2026-11-15",
                            "description": "effective from (UTC date or datetime); default: now"},
                   "account": {"type": "string", "description": "Azure OpenAI account resource id"}}}}}}

router = APIRouter()


def _pricing_admin(request: Request, context: Context) -> None:
    require_admin(context.settings, request.headers, PRICING_ADMIN, context.access_store)


async def deployment_store(context: Context) -> DeploymentRepository:
    """The catalog's table, through the usage store's client (built once per process, in the thread pool)."""
    from shared.adapters.deployment_tables import DeploymentTableStore
    from shared.adapters.table_access import TableAccess

    def get() -> DeploymentRepository:
        return context.cached("deployment_store",
                              lambda settings: DeploymentTableStore(TableAccess(context.tables, settings.table_prefix)))

    return get() if context.built("deployment_store") else await run_in_threadpool(get)


Deployments = Annotated[DeploymentRepository, Depends(deployment_store)]


@router.get("/api/deployments", dependencies=AUTHORIZED, responses=ERRORS,
            summary="The deployment catalog: the version of every deployment now in force (or deleted)")
def list_deployments(deployments: Deployments) -> JSONResponse:
    catalog = DeploymentCatalog(deployments.all())
    return JSONResponse({"deployments": [deployment_json(record) for record in catalog.latest()],
                         "unknownSkus": [deployment_json(record) for record in catalog.unknown_skus()]})


@router.get("/api/deployments/{name}", dependencies=AUTHORIZED, responses=ERRORS,
            summary="Every version of one deployment (name compared case-insensitively)")
def deployment_history(name: str, deployments: Deployments) -> JSONResponse:
    history = deployments.history(name)
    if not history:
        return JSONResponse({"error": {"message": f"no deployment {name!r} in the catalog"}}, status_code=404)
    return JSONResponse({"name": history[-1].name, "versions": [deployment_json(record) for record in history]})


@router.put("/api/deployments/{name}", dependencies=[Depends(_pricing_admin)], responses=ERRORS,
            openapi_extra={"requestBody": BODY},
            summary="Record a deployment version by hand (model, version, SKU, region, PTUs), effective from a moment")
async def put_deployment(name: str, request: Request, context: Context, now: Now,
                         deployments: Deployments) -> JSONResponse:
    body = await json_object(request, '{"model": "gpt-4o", "version": "2024-08-06", "sku": "DataZoneStandard", '
                                      '"region": "eastus2"}')
    unknown = sorted(set(body) - {"model", "version", "sku", "region", "ptu", "from", "account"})
    if unknown:
        raise InvalidRequestError(unknown[0], "is not a field of a deployment")
    record = deployment_from_body(name, body, now)
    changed = await run_in_threadpool(set_deployment, deployments, record)
    if context.built("price_catalog"):
        context.price_catalog().refresh()
    return JSONResponse({**deployment_json(record), "changed": changed})
