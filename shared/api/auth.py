"""Who is calling: the key check and the caller's subscription scope, as FastAPI dependencies.

* ``API_AUTH=apikey``: ``x-api-key`` must equal ``API_KEY`` (401 otherwise).
* ``API_AUTH=functionkey``: the Functions host has already checked the function key.
* Either way, when ``TRUST_APP_SERVICE_AUTH=true`` (App Service Authentication in front of the app,
  which strips client-sent copies of its headers) a request carrying ``X-MS-CLIENT-PRINCIPAL*``
  headers is scoped by that principal's grant in ``<prefix>access``; without the setting the
  headers are ignored, since anyone could send them.  No principal = the key holder's full view.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import Request

from shared.core.access import Scope, principal_from_headers
from shared.errors import ForbiddenError, NotAuthorizedError

if TYPE_CHECKING:
    from shared.adapters.access_tables import AccessTableStore
    from shared.api.app import AppContext

log = logging.getLogger(__name__)


def access_store(context: AppContext) -> AccessTableStore:
    from shared.api.pricing_routes import feature_store
    from shared.composition import access_store as build

    return context.cached("access_store", lambda settings: build(settings, feature_store(context)))


def check_key(context: AppContext, request: Request) -> None:
    if context.settings.api_auth == "functionkey":
        return  # the Functions host has already checked the function key
    supplied = request.headers.get("x-api-key", "")
    if not supplied or not hmac.compare_digest(supplied.encode(), context.settings.api_key.encode()):
        raise NotAuthorizedError("missing or invalid x-api-key header")


def principal_scope(context: AppContext, request: Request) -> Scope | None:
    """The scope of a trusted principal on the request; ``None`` when there is none (or not trusted)."""
    if not context.settings.trust_app_service_auth:
        return None
    principal = principal_from_headers(request.headers)
    if principal is None:
        return None
    return Scope.for_principal(principal, access_store(context).lookup(principal.ids))


def resolve_scope(context: AppContext, request: Request) -> Scope:
    """Key first (401), then the principal's grant (403 when it has none); cached on the request."""
    cached = getattr(request.state, "scope", None)
    if isinstance(cached, Scope):
        return cached
    check_key(context, request)
    scope = principal_scope(context, request) or Scope.unrestricted()
    request.state.scope = scope
    return scope


def scope_dependency(context: AppContext) -> Callable[[Request], Scope]:
    def scope_of(request: Request) -> Scope:
        return resolve_scope(context, request)

    return scope_of


def caller_scope(request: Request) -> Scope:
    """Route parameter dependency (``Annotated[Scope, Depends(caller_scope)]``): the app's context
    is on ``app.state`` (set by ``create_app``), so this can live at module level."""
    context: AppContext = request.app.state.chargeback_context
    return resolve_scope(context, request)


def require_access_admin(context: AppContext, request: Request) -> None:
    """Managing grants: ``ADMIN_API_KEY`` in ``x-api-key``, or a trusted principal whose grant is admin."""
    supplied = request.headers.get("x-api-key", "")
    admin_key = context.settings.admin_api_key
    if supplied and admin_key and hmac.compare_digest(supplied.encode(), admin_key.encode()):
        return
    if context.settings.api_auth == "functionkey" or (supplied and hmac.compare_digest(
            supplied.encode(), context.settings.api_key.encode())):
        scope = principal_scope(context, request)
        if scope is not None:
            if scope.admin:
                return
            raise ForbiddenError(f"{scope.caller} is not an admin; managing access needs the admin role")
    if admin_key is None:
        raise NotAuthorizedError("access changes need an admin: ADMIN_API_KEY is not configured and the caller "
                                 "is no trusted admin principal")
    raise NotAuthorizedError("access changes need the admin key in the x-api-key header (or an admin principal)")
