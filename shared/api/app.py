"""FastAPI application: ``/api/usage``, ``/api/health``, OpenAPI at ``/api/openapi.json``.

Nothing connects when the app is built; the table store is created on the first request that
needs it.  Every route keeps one contract (:mod:`shared.api.contract`): one JSON error shape
(domain errors 4xx with a clear message — 401 no or bad credentials, 403 a caller asking for what
its scope does not hold: :mod:`shared.api.auth` —, anything else a generic 5xx whose details stay
in the log), and only the query parameters a route declares.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from shared.api import (
    access_routes,
    anomaly_routes,
    contract,
    dashboard_routes,
    deployment_routes,
    docs_routes,
    pricing_routes,
    probe_routes,
    quota_routes,
    reconciliation_routes,
    subscription_routes,
    usage_routes,
)
from shared.api.deps import AppContext

__all__ = ["AppContext", "create_app"]  # AppContext is built by the Functions entry point, tools and tests

ROUTERS = (usage_routes, probe_routes, pricing_routes, deployment_routes, quota_routes, anomaly_routes, access_routes,
           subscription_routes, reconciliation_routes, dashboard_routes, docs_routes)


def create_app(context: AppContext) -> FastAPI:
    app = FastAPI(title="APIM Chargeback", version="0.1.0",
                  description="Per-subscription Azure OpenAI token usage behind API Management.",
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None,
                  dependencies=[Depends(contract.known_parameters_only)])  # docs: docs_routes, offline

    app.state.chargeback_context = context  # what the dependencies of shared.api.deps read

    contract.install(app)
    for feature in ROUTERS:  # in this order in the OpenAPI document
        app.include_router(feature.router)
    return app
