"""FastAPI application: ``/api/usage``, ``/api/health``, OpenAPI at ``/api/openapi.json``.

Nothing connects when the app is built; the table store is created on the first request that
needs it.  Domain errors become 4xx with a clear message (401 no or bad credentials, 403 a caller
asking for what its scope does not hold: :mod:`shared.api.auth`); anything else a generic 5xx whose
details stay in the log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared.api import (
    access_routes,
    anomaly_routes,
    dashboard_routes,
    deployment_routes,
    docs_routes,
    pricing_routes,
    probe_routes,
    quota_routes,
    usage_routes,
)
from shared.api.deps import AppContext
from shared.errors import (
    ChargebackError,
    ForbiddenError,
    InvalidRequestError,
    NotAuthorizedError,
    SettingError,
    StorageUnavailableError,
)

__all__ = ["AppContext", "create_app"]  # AppContext is built by the Functions entry point, tools and tests

log = logging.getLogger(__name__)
ROUTERS = (usage_routes, probe_routes, pricing_routes, deployment_routes, quota_routes, anomaly_routes, access_routes,
           dashboard_routes, docs_routes)


def _error(status: int, message: str, parameter: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"message": message}}
    if parameter:
        body["error"]["parameter"] = parameter
    return JSONResponse(body, status_code=status)


def create_app(context: AppContext) -> FastAPI:
    app = FastAPI(title="APIM Chargeback", version="0.1.0",
                  description="Per-subscription Azure OpenAI token usage behind API Management.",
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)  # docs: docs_routes, offline

    app.state.chargeback_context = context  # what the dependencies of shared.api.deps read

    @app.exception_handler(InvalidRequestError)
    async def invalid(_: Request, exc: InvalidRequestError) -> JSONResponse:
        return _error(400, str(exc), exc.parameter)

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        parameter = str(first.get("loc", ["", "request"])[-1])
        return _error(400, f"{parameter}: {first.get('msg', 'invalid value')}", parameter)

    @app.exception_handler(NotAuthorizedError)
    async def unauthorized(_: Request, exc: NotAuthorizedError) -> JSONResponse:
        return _error(401, str(exc))

    @app.exception_handler(ForbiddenError)
    async def forbidden(_: Request, exc: ForbiddenError) -> JSONResponse:
        return _error(403, str(exc))

    @app.exception_handler(ChargebackError)
    async def failed(request: Request, exc: ChargebackError) -> JSONResponse:
        log.error("request %s failed: %s", request.url.path, exc)
        if isinstance(exc, StorageUnavailableError):
            return _error(503, "usage storage is unavailable; try again later")
        if isinstance(exc, SettingError):
            return _error(500, "the service is misconfigured; see the function log")
        return _error(500, "the request could not be completed; see the function log")

    for feature in ROUTERS:  # in this order in the OpenAPI document
        app.include_router(feature.router)
    return app
