"""FastAPI application: ``/api/usage``, ``/api/health``, OpenAPI at ``/api/openapi.json``.

Nothing connects when the app is built; the table store is created on the first request that
needs it.  Domain errors become 4xx with a clear message; anything else a generic 5xx whose details
stay in the log.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from shared.core.usage import Granularity
from shared.errors import (
    ChargebackError,
    InvalidRequestError,
    NotAuthorizedError,
    SettingError,
    StorageUnavailableError,
)
from shared.ports import UsageRepository
from shared.services.report import parse_usage_query, read_usage, report_csv, report_json
from shared.settings import Settings

log = logging.getLogger(__name__)
FROM_HELP = "ISO date or datetime, inclusive; default: start of the current month (UTC)"
TO_HELP = "ISO date (that whole day included) or datetime (exclusive); default: now"


class AppContext:
    """Lazily built dependencies of the API, one set per process."""

    def __init__(self, settings_factory: Callable[[], Settings],
                 store_factory: Callable[[Settings], UsageRepository] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._settings_factory = settings_factory
        self._store_factory = store_factory
        self._settings: Settings | None = None
        self._store: UsageRepository | None = None
        self.clock = clock

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self._settings_factory()
        return self._settings

    @property
    def store(self) -> UsageRepository:
        if self._store is None:
            if self._store_factory is None:
                from shared.composition import table_store

                self._store = table_store(self.settings)
            else:
                self._store = self._store_factory(self.settings)
        return self._store


def _error(status: int, message: str, parameter: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"message": message}}
    if parameter:
        body["error"]["parameter"] = parameter
    return JSONResponse(body, status_code=status)


def create_app(context: AppContext) -> FastAPI:
    app = FastAPI(title="APIM Chargeback", version="0.1.0",
                  description="Per-subscription Azure OpenAI token usage behind API Management.",
                  openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None)

    def require_key(request: Request) -> None:
        if context.settings.api_auth == "functionkey":
            return  # the Functions host has already checked the function key
        supplied = request.headers.get("x-api-key", "")
        if not supplied or not hmac.compare_digest(supplied.encode(), context.settings.api_key.encode()):
            raise NotAuthorizedError("missing or invalid x-api-key header")

    authorized = [Depends(require_key)]

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

    @app.exception_handler(ChargebackError)
    async def failed(request: Request, exc: ChargebackError) -> JSONResponse:
        log.error("request %s failed: %s", request.url.path, exc)
        if isinstance(exc, StorageUnavailableError):
            return _error(503, "usage storage is unavailable; try again later")
        if isinstance(exc, SettingError):
            return _error(500, "the service is misconfigured; see the function log")
        return _error(500, "the request could not be completed; see the function log")

    @app.get("/api/health", summary="Liveness and storage reachability")
    def health() -> JSONResponse:
        try:
            # A one-partition read that returns nothing: proves the table answers, costs nothing.
            context.store.read("health-check", Granularity.MONTH, datetime(2000, 1, 1, tzinfo=UTC),
                               datetime(2000, 2, 1, tzinfo=UTC))
        except ChargebackError as exc:
            log.warning("health check: %s", exc)
            return JSONResponse({"status": "degraded", "storage": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "storage": "ok"})

    @app.get("/api/usage", dependencies=authorized, summary="Token usage per subscription, model and period",
             responses={200: {"content": {"text/csv": {}}}, 400: {"description": "A bad parameter (named)"},
                        401: {"description": "No or bad credentials"}})
    def usage(
        subscription: Annotated[list[str] | None, Query(description="APIM subscription id; repeat for several")] = None,
        start: Annotated[str | None, Query(alias="from", description=FROM_HELP)] = None,
        end: Annotated[str | None, Query(alias="to", description=TO_HELP)] = None,
        granularity: Annotated[str | None, Query(description="hour, day (default) or month")] = None,
        format: Annotated[str, Query(description="json (default) or csv")] = "json",
    ) -> Response:
        if format not in ("json", "csv"):
            raise InvalidRequestError("format", f"must be json or csv, got {format!r}")
        query = parse_usage_query(subscription, start, end, granularity, context.clock())
        rows = read_usage(context.store, query)
        if format == "csv":
            name = f"usage-{query.start:%Y%m%d}-{query.end:%Y%m%d}-{query.granularity.value}.csv"
            return PlainTextResponse(report_csv(rows), media_type="text/csv",
                                     headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return JSONResponse(report_json(query, rows))

    return app
