"""API Management resource ids, and the parts of an APIM subscription's ARM record that name things.

An APIM *service* is ``/subscriptions/{azure subscription}/resourceGroups/{group}/providers/
Microsoft.ApiManagement/service/{name}``. Its *subscriptions* (the keys callers send, not Azure
subscriptions) are child resources ``{service id}/subscriptions/{sid}``; the ``sid`` (the ARM
``name``) is what the gateway logs as ``ApimSubscriptionId`` and what usage is keyed by.

ARM writes a subscription's ``ownerId`` and ``scope`` either relative to the service
(``/users/1``, ``/products/starter``, ``/apis``, ``/apis/{apiId}``) or as full resource ids
(the REST API's own list example does the latter); :func:`service_relative` makes both the
relative form, so the two spellings never look like a change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ApimIdError(ValueError):
    """An APIM service resource id is malformed; the message names the id and the expected form."""


# Strict on purpose: the id comes from a setting, and a typo should fail the run naming it rather
# than list another resource. Segment names are case-insensitive in ARM; the values are checked
# against the rules ARM enforces (subscription GUID, resource group 1-90 of [-\w._()] not ending
# in '.', service name 1-50 letters/digits/hyphens, starting with a letter, not ending in '-').
_SERVICE_ID = re.compile(
    r"/subscriptions/(?P<subscription>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"/resourceGroups/(?P<group>[-\w.()]{0,89}[-\w()])"
    r"/providers/Microsoft\.ApiManagement/service/(?P<name>[a-zA-Z](?:[a-zA-Z0-9-]{0,48}[a-zA-Z0-9])?)",
    re.IGNORECASE,
)
_EXPECTED = "/subscriptions/{guid}/resourceGroups/{group}/providers/Microsoft.ApiManagement/service/{name}"


@dataclass(frozen=True)
class ApimServiceRef:
    resource_id: str
    subscription_id: str  # the Azure subscription (a GUID), not an APIM subscription
    resource_group: str
    name: str


def parse_apim_service_id(resource_id: str) -> ApimServiceRef:
    text = resource_id.strip().rstrip("/")
    match = _SERVICE_ID.fullmatch(text)
    if match is None:
        raise ApimIdError(f"not an API Management service resource id: {resource_id!r} (expected {_EXPECTED})")
    return ApimServiceRef(text, match["subscription"], match["group"], match["name"])


_SERVICE_PREFIX = re.compile(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ApiManagement"
                             r"/service/[^/]+(?=/)", re.IGNORECASE)


def service_relative(path: str) -> str:
    """``/subscriptions/…/service/x/products/p`` -> ``/products/p``; an already relative path is kept as is."""
    match = _SERVICE_PREFIX.match(path)
    return path[match.end():] if match else path


def last_segment(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def owner_user_id(owner_id: str | None) -> str:
    """The user id in an ``ownerId`` (``/users/{userId}``, relative or full); ``""`` when there is none."""
    if not owner_id:
        return ""
    relative = service_relative(owner_id)
    if relative.lower().startswith("/users/"):
        return relative[len("/users/"):]
    return relative  # not the documented form: kept as ARM wrote it rather than guessed at


class ScopeKind(StrEnum):
    PRODUCT = "product"  # /products/{productId}
    API = "api"  # /apis/{apiId}
    ALL = "all"  # /apis: every API of the service (the built-in all-access subscription)
    OTHER = "other"  # a form this code does not know (kept verbatim)


def scope_kind(scope: str) -> ScopeKind:
    parts = [part for part in service_relative(scope).split("/") if part]
    if len(parts) == 1 and parts[0].lower() == "apis":
        return ScopeKind.ALL
    if len(parts) == 2 and parts[0].lower() == "apis":
        return ScopeKind.API
    if len(parts) == 2 and parts[0].lower() == "products":
        return ScopeKind.PRODUCT
    return ScopeKind.OTHER
