"""Per-caller scoping of the report API: who the caller is and which subscriptions it may see.

Pure rules, no I/O.  A caller holding the API key (or a function key) and presenting no principal
sees every subscription, as before.  When App Service Authentication (Entra ID) fronts the app and
``TRUST_APP_SERVICE_AUTH`` says so, the ``X-MS-CLIENT-PRINCIPAL*`` headers name the caller; its
grant in the access table (by object id or UPN) then decides: ``admin`` sees everything, a reader
only its own subscriptions, and a principal without a grant nothing at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.core.quotas import DEFAULT_SUBSCRIPTION, check_subscription_id
from shared.errors import ForbiddenError, InvalidRequestError, NotAuthorizedError

ADMIN = "admin"
READER = "reader"
ROLES = (ADMIN, READER)
MAX_PRINCIPAL = 256
MAX_PRINCIPAL_HEADER = 16 * 1024
MAX_GRANT_SUBSCRIPTIONS = 500

PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"
# Claim types App Service puts in X-MS-CLIENT-PRINCIPAL for Entra ID: object id first, then names.
OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
NAME_CLAIMS = ("preferred_username", "upn", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn")


def normalize_principal(value: Any, field: str = "principal") -> str:
    """An object id or UPN as stored: trimmed, lower case (Entra compares both case-insensitively)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(field, "must be an Entra ID object id or user principal name")
    text = value.strip().lower()
    if len(text) > MAX_PRINCIPAL:
        raise InvalidRequestError(field, f"must be at most {MAX_PRINCIPAL} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InvalidRequestError(field, "must not contain control characters")
    return text


@dataclass(frozen=True)
class Principal:
    """The identity App Service authenticated: candidate keys into the access table, object id first."""

    ids: tuple[str, ...]

    @property
    def display(self) -> str:
        return self.ids[0]


def principal_from_headers(headers: Mapping[str, str]) -> Principal | None:
    """The caller's principal from App Service's headers; ``None`` when none is present.

    Only call this when the headers can be trusted (App Service Authentication strips client-sent
    copies); a malformed header is a 401, never silently ignored.
    """
    candidates: list[str] = []
    encoded = headers.get(PRINCIPAL_HEADER, "").strip()
    if encoded:
        claims = _claims(encoded)
        candidates += [claims[t] for t in OBJECT_ID_CLAIMS if claims.get(t)]
        candidates += [claims[t] for t in NAME_CLAIMS if claims.get(t)]
    for header in (PRINCIPAL_ID_HEADER, PRINCIPAL_NAME_HEADER):
        if headers.get(header, "").strip():
            candidates.append(headers[header])
    ids: list[str] = []
    for candidate in candidates:
        try:
            ids.append(normalize_principal(candidate))
        except InvalidRequestError:
            raise NotAuthorizedError("the X-MS-CLIENT-PRINCIPAL headers name no valid principal") from None
    unique = tuple(dict.fromkeys(ids))
    return Principal(unique) if unique else None


def _claims(encoded: str) -> dict[str, str]:
    if len(encoded) > MAX_PRINCIPAL_HEADER:
        raise NotAuthorizedError("the X-MS-CLIENT-PRINCIPAL header is too large")
    try:
        document = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise NotAuthorizedError("the X-MS-CLIENT-PRINCIPAL header is not base64-encoded JSON") from None
    claims = document.get("claims") if isinstance(document, dict) else None
    if not isinstance(claims, list):
        raise NotAuthorizedError("the X-MS-CLIENT-PRINCIPAL header has no claims")
    found: dict[str, str] = {}
    for claim in claims:
        if isinstance(claim, dict) and isinstance(claim.get("typ"), str) and isinstance(claim.get("val"), str):
            found.setdefault(claim["typ"], claim["val"])
    return found


# -- grants ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    principal: str  # normalized object id or UPN
    role: str  # admin | reader
    subscriptions: frozenset[str]

    @property
    def admin(self) -> bool:
        return self.role == ADMIN


def parse_subscriptions(value: Any, field: str = "subscriptions") -> frozenset[str]:
    """A list of subscription ids, or one comma-separated string."""
    if value is None or value == "":
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise InvalidRequestError(field, "must be a list of subscription ids (or a comma-separated string)")
    names = [check_subscription_id(item, field) for item in items if not (isinstance(item, str) and not item.strip())]
    if DEFAULT_SUBSCRIPTION in names:
        raise InvalidRequestError(field, "* is not a subscription; give the role admin to see every subscription")
    if any("," in name for name in names):
        raise InvalidRequestError(field, "a subscription id must not contain a comma")
    if len(names) > MAX_GRANT_SUBSCRIPTIONS:
        raise InvalidRequestError(field, f"at most {MAX_GRANT_SUBSCRIPTIONS} subscriptions per principal")
    return frozenset(names)


def make_grant(principal: Any, role: Any = READER, subscriptions: Any = None) -> Grant:
    role_text = str(role or READER).strip().lower()
    if role_text not in ROLES:
        raise InvalidRequestError("role", f"must be admin or reader, got {role!r}")
    subs = parse_subscriptions(subscriptions)
    if role_text == READER and not subs:
        raise InvalidRequestError("subscriptions", "a reader needs at least one subscription")
    return Grant(normalize_principal(principal), role_text, subs)


def grant_from_body(principal: str, body: Mapping[str, Any]) -> Grant:
    """``{"subscriptions": ["team-a", "team-b"]}`` or ``{"role": "admin"}``."""
    unknown = sorted(set(body) - {"role", "subscriptions"})
    if unknown:
        raise InvalidRequestError(unknown[0], "unknown field; expected role and/or subscriptions")
    return make_grant(principal, body.get("role"), body.get("subscriptions"))


def grant_json(grant: Grant) -> dict[str, object]:
    return {"principal": grant.principal, "role": grant.role, "subscriptions": sorted(grant.subscriptions)}


# -- the caller's scope ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """What one caller may see: every subscription (``subscriptions is None``) or a fixed set."""

    caller: str  # "key" (API or function key, no principal) or "principal:<id>"
    subscriptions: frozenset[str] | None
    admin: bool = False

    @classmethod
    def unrestricted(cls, caller: str = "key", admin: bool = False) -> Scope:
        return cls(caller, None, admin)

    @classmethod
    def for_principal(cls, principal: Principal, grants: Iterable[Grant]) -> Scope:
        """The union of the principal's grants (object id and UPN may both have one)."""
        found = list(grants)
        caller = f"principal:{principal.display}"
        if not found:
            raise ForbiddenError(f"principal {principal.display} has no access to chargeback data; an admin can "
                                 "grant it (chargeback access grant, or PUT /api/access/{principal})")
        if any(g.admin for g in found):
            return cls(caller, None, admin=True)
        return cls(caller, frozenset().union(*(g.subscriptions for g in found)))

    @property
    def restricted(self) -> bool:
        return self.subscriptions is not None

    def allows(self, subscription_id: str) -> bool:
        return self.subscriptions is None or subscription_id in self.subscriptions

    def check(self, subscription_id: str) -> None:
        if not self.allows(subscription_id):
            raise ForbiddenError(f"no access to subscription {subscription_id!r} for {self.caller}")

    def subscriptions_for(self, requested: Sequence[str]) -> tuple[str, ...] | None:
        """The subscriptions a read covers: each requested one (checked), or all the caller may see.

        ``None`` means every subscription (an unrestricted caller asking for none in particular).
        """
        for name in requested:
            self.check(name)
        if requested:
            return tuple(requested)
        return None if self.subscriptions is None else tuple(sorted(self.subscriptions))

    def digest(self) -> str:
        """Stable fingerprint of caller + visible subscriptions (bound into page tokens)."""
        subs = "*" if self.subscriptions is None else "\n".join(sorted(self.subscriptions))
        return hashlib.sha256(f"{self.caller}\n{self.admin}\n{subs}".encode()).hexdigest()[:32]
