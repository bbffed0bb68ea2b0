"""One contract for every route: one JSON error shape, only declared query parameters, documented errors.

* **Errors** are ``{"error": {"code", "message", "parameter"?}}`` whatever raised them: the
  domain's errors (400 bad parameter, 401 no or bad credentials, 403 outside the caller's scope,
  413 body too large, 503 storage unreachable), FastAPI's validation (400, with a readable message
  instead of pydantic's), Starlette's 404 and 405, and anything unexpected (500, details in the
  log only).  Nothing internal is ever in an error body.
* **Query parameters** a route does not declare are a 400 naming them and listing the accepted
  ones — derived from the route's own parameters (and its dependencies'), so a typo like ``fromm=``
  is never silently ignored.  ``code`` is always accepted: the Functions host passes the function
  key on as ``?code=``.
* **OpenAPI** documents these errors on every operation (the schema ``Error``) and drops FastAPI's
  422, which the app never answers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.core.months import MONTH_PATTERN
from shared.errors import (
    ChargebackError,
    ForbiddenError,
    InvalidRequestError,
    NotAuthorizedError,
    SettingError,
    StorageUnavailableError,
)

log = logging.getLogger(__name__)

ALWAYS_ACCEPTED = frozenset({"code"})  # the function key, passed on by the Functions host
# Regular expressions of the routes' parameters -> what a person is told they expect.
READABLE_PATTERNS = {MONTH_PATTERN: "expected YYYY-MM (e.g. 2026-11)"}
CODES = {400: "bad_request", 401: "not_authorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         413: "body_too_large", 500: "internal_error", 503: "unavailable"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["message"], "additionalProperties": False,
        "properties": {"code": {"type": "string", "description": "bad_request, not_authorized, forbidden, "
                                                                 "not_found, method_not_allowed, body_too_large, "
                                                                 "internal_error or unavailable"},
                       "message": {"type": "string"},
                       "parameter": {"type": "string", "description": "the parameter (or body) at fault"}}}}}
MAX_ECHO = 80  # characters of a refused value repeated in a message


class BodyTooLargeError(InvalidRequestError):
    """A request body over the limit (HTTP 413)."""


def error_response(status: int, message: str, parameter: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    detail: dict[str, Any] = {"code": CODES.get(status, "error"), "message": message}
    if parameter:
        detail["parameter"] = parameter
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


def _echo(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "…"


def readable(error: dict[str, Any]) -> tuple[str, str]:
    """(parameter, message) of one pydantic validation error, in words a caller understands."""
    location = [str(part) for part in error.get("loc", ())]
    parameter = "body" if location[:1] == ["body"] else (location[-1] if location else "request")
    kind, context, given = error.get("type", ""), error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        problem = "is required"
    elif kind in ("int_parsing", "int_type", "int_from_float"):
        problem = f"expected a whole number, got {_echo(given)}"
    elif kind == "greater_than_equal":
        problem = f"must be at least {context.get('ge')}, got {_echo(given)}"
    elif kind == "less_than_equal":
        problem = f"must be at most {context.get('le')}, got {_echo(given)}"
    elif kind == "string_too_long":
        problem = f"must be at most {context.get('max_length')} characters"
    elif kind == "string_pattern_mismatch":
        expected = READABLE_PATTERNS.get(str(context.get("pattern")), "contains characters that are not allowed")
        problem = f"{expected}, got {_echo(given)}"
    else:
        problem = str(error.get("msg", "invalid value"))
    return parameter, f"{parameter}: {problem}"


# -- unknown query parameters ----------------------------------------------------------------------
_ACCEPTED = "_chargeback_accepted_query"  # where a route keeps its accepted names once computed


def accepted_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameters ``route`` declares, its dependencies' included (by alias)."""
    accepted = getattr(route, _ACCEPTED, None)
    if not isinstance(accepted, frozenset):
        accepted = frozenset(_query_names(route.dependant))
        setattr(route, _ACCEPTED, accepted)
    return accepted


def _query_names(dependant: Dependant) -> set[str]:
    names = {getattr(param, "validation_alias", None) or param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


async def known_parameters_only(request: Request) -> None:
    """App-wide dependency: a query parameter the route does not declare is a 400 naming it."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted = accepted_parameters(route)
    unknown = sorted(set(request.query_params.keys()) - accepted - ALWAYS_ACCEPTED)
    if unknown:
        listed = ", ".join(sorted(accepted)) or "none"
        names = ", ".join(_echo(name) for name in unknown[:5])
        raise InvalidRequestError(unknown[0][:MAX_ECHO], f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                                                         f"{names}; {request.url.path} accepts: {listed}")


# -- unexpected failures ---------------------------------------------------------------------------
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class UnexpectedErrors:
    """ASGI middleware: an exception no handler took becomes a 500 in the error shape (logged with
    its traceback); once a streamed body has begun, the connection is ended instead (a truncated
    response, never a wrong one)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("request %s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            await error_response(500, "the request could not be completed; see the function log")(scope, receive, send)


# -- handlers and OpenAPI ----------------------------------------------------------------------------
def install(app: FastAPI) -> None:
    """The error handlers, the unexpected-error middleware and the OpenAPI post-processing."""

    @app.exception_handler(BodyTooLargeError)
    async def too_large(_: Request, exc: BodyTooLargeError) -> JSONResponse:
        return error_response(413, str(exc), exc.parameter)

    @app.exception_handler(InvalidRequestError)
    async def invalid(_: Request, exc: InvalidRequestError) -> JSONResponse:
        return error_response(400, str(exc), exc.parameter)

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        parameter, message = readable(errors[0]) if errors else ("request", "request: invalid")
        return error_response(400, message, parameter)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path = request.url.path[:MAX_ECHO]
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {path}; allowed: {headers.get('Allow', 'none')}"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, headers=headers or None)

    @app.exception_handler(NotAuthorizedError)
    async def unauthorized(_: Request, exc: NotAuthorizedError) -> JSONResponse:
        return error_response(401, str(exc))

    @app.exception_handler(ForbiddenError)
    async def forbidden(_: Request, exc: ForbiddenError) -> JSONResponse:
        return error_response(403, str(exc))

    @app.exception_handler(ChargebackError)
    async def failed(request: Request, exc: ChargebackError) -> JSONResponse:
        log.error("request %s failed: %s", request.url.path, exc)
        if isinstance(exc, StorageUnavailableError):
            return error_response(503, "usage storage is unavailable; try again later")
        if isinstance(exc, SettingError):
            return error_response(500, "the service is misconfigured; see the function log")
        return error_response(500, "the request could not be completed; see the function log")

    app.add_middleware(UnexpectedErrors)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = documented_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ADDED = {"400": "A bad or unknown parameter (named)", "413": "Body larger than the limit",
          "503": "Storage unreachable; try again later"}


def documented_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation documents the error shape: 400 everywhere (unknown parameters), 413 on
    writes with a body, 503 wherever storage is read; FastAPI's unused 422 is dropped."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            wanted = ["400", "503"] if path != "/api/health" else ["400"]
            if "requestBody" in operation:
                wanted.append("413")
            for status in wanted:
                responses.setdefault(status, {"description": _ADDED[status]})
            for status, response in responses.items():
                if status[:1] in ("4", "5") and "content" not in response and not (
                        path == "/api/health" and status == "503"):
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
    schemas = schema["components"]["schemas"]
    if "HTTPValidationError" in schemas and "HTTPValidationError" not in str(schema.get("paths")):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return schema
