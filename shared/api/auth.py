"""Who is calling: the key check, the caller's subscription scope and the admin rule.

* ``API_AUTH=apikey``: ``x-api-key`` must equal ``API_KEY`` — or ``ADMIN_API_KEY``: the admin key
  reads whatever the API key reads — (401 otherwise).
* ``API_AUTH=functionkey``: the Functions host has already checked the function key.
* ``API_AUTH=entra``: App Service Authentication (Entra ID) signs every caller in and the host asks
  for no key; the app requires its principal (401 without one) on every route but health and the
  dashboard's page and assets, and scopes it by its grant (403 without one).  Needs
  ``TRUST_APP_SERVICE_AUTH=true``: without it the principal headers could be anyone's.
* Either way, when ``TRUST_APP_SERVICE_AUTH=true`` (App Service Authentication in front of the app,
  which strips client-sent copies of its headers) a request carrying ``X-MS-CLIENT-PRINCIPAL*``
  headers is scoped by that principal's grant in ``<prefix>access``; without the setting the
  headers are ignored, since anyone could send them.  No principal = the key holder's full view.
* Writes that change who may do or see what (quotas, access grants) need an admin: the
  ``ADMIN_API_KEY`` in ``x-api-key`` and, where the rule allows it, a trusted admin principal.

Plain functions of the settings and the request headers; :mod:`shared.api.deps` makes them FastAPI
dependencies.  Grants are looked up only when a trusted principal is on the request.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from shared.core.access import Grant, Principal, Scope, principal_from_headers
from shared.errors import ForbiddenError, NotAuthorizedError, SettingError
from shared.settings import Settings


class GrantLookup(Protocol):
    def lookup(self, principals: Iterable[str]) -> list[Grant]: ...


class GrantStore(GrantLookup, Protocol):
    """The access grants, as the admin API manages them."""

    def all(self) -> list[Grant]: ...

    def put(self, grant: Grant) -> None: ...

    def delete(self, principal: str) -> bool: ...


Grants = Callable[[], GrantLookup]  # the access store, built only when a principal must be looked up


def _matches(supplied: str, key: str) -> bool:
    return hmac.compare_digest(supplied.encode(), key.encode())


def signed_in_principal(settings: Settings, headers: Mapping[str, str]) -> Principal:
    """``API_AUTH=entra``: the principal App Service Authentication signed in (401 when there is none)."""
    if not settings.trust_app_service_auth:
        raise SettingError("TRUST_APP_SERVICE_AUTH", "must be true when API_AUTH=entra (App Service "
                                                     "Authentication in front of the app signs callers in)")
    principal = principal_from_headers(headers)
    if principal is None:
        raise NotAuthorizedError("sign in with Entra ID: no App Service Authentication principal on the request")
    return principal


def check_key(settings: Settings, headers: Mapping[str, str]) -> None:
    if settings.api_auth == "functionkey":
        return  # the Functions host has already checked the function key
    if settings.api_auth == "entra":
        signed_in_principal(settings, headers)  # App Service Authentication, not a key, admits the caller
        return
    supplied = headers.get("x-api-key", "")
    admin_key = settings.admin_api_key
    if not supplied or not (_matches(supplied, settings.api_key) or (admin_key and _matches(supplied, admin_key))):
        raise NotAuthorizedError("missing or invalid x-api-key header")


def principal_scope(settings: Settings, headers: Mapping[str, str], grants: Grants) -> Scope | None:
    """The scope of a trusted principal on the request; ``None`` when there is none (or not trusted)."""
    if not settings.trust_app_service_auth:
        return None
    principal = principal_from_headers(headers)
    if principal is None:
        return None
    return Scope.for_principal(principal, grants().lookup(principal.ids))


def resolve_scope(settings: Settings, headers: Mapping[str, str], grants: Grants) -> Scope:
    """Key first (401), then the principal's grant (403 when it has none)."""
    check_key(settings, headers)
    return principal_scope(settings, headers, grants) or Scope.unrestricted()


@dataclass(frozen=True)
class AdminRule:
    """Who may make one kind of change, and what a refused caller is told."""

    principals: bool  # a trusted principal whose grant is admin may too (besides the admin key)
    no_admin_key: str  # 401 when ADMIN_API_KEY is not configured (and no admin principal)
    needs_key: str  # 401 when the admin key is missing or wrong (and no admin principal)


# Quotas: the admin key only.  Access grants: the admin key, or an admin principal (a trusted
# principal reaching the app with the API key, the function key the host checked, or signed in by
# App Service Authentication in entra mode).
QUOTA_ADMIN = AdminRule(False, "quota changes are disabled: ADMIN_API_KEY is not configured",
                        "quota changes need the admin key in the x-api-key header")
ACCESS_ADMIN = AdminRule(True, "access changes need an admin: ADMIN_API_KEY is not configured and the caller "
                               "is no trusted admin principal",
                         "access changes need the admin key in the x-api-key header (or an admin principal)")


def require_admin(settings: Settings, headers: Mapping[str, str], rule: AdminRule, grants: Grants) -> None:
    """The one admin check of every write that needs an admin (401 / 403 per ``rule``)."""
    if settings.api_auth == "entra":
        signed_in_principal(settings, headers)  # signed in first, whatever key comes with it
    supplied = headers.get("x-api-key", "")
    admin_key = settings.admin_api_key
    if supplied and admin_key and _matches(supplied, admin_key):
        return
    host_admitted = settings.api_auth in ("functionkey", "entra")  # the host or App Service checked the caller
    if rule.principals and (host_admitted or (supplied and _matches(supplied, settings.api_key))):
        scope = principal_scope(settings, headers, grants)
        if scope is not None:
            if scope.admin:
                return
            raise ForbiddenError(f"{scope.caller} is not an admin; managing access needs the admin role")
    raise NotAuthorizedError(rule.no_admin_key if admin_key is None else rule.needs_key)
