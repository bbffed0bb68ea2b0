"""APIM subscriptions as ARM lists them (``azure-mgmt-apimanagement``), as directory records.

``ApiManagementClient.subscription.list(resource_group, service_name)`` pages through
``nextLink`` (``GET {service id}/subscriptions``). Of each ``SubscriptionContract`` only
``name``, ``display_name``, ``owner_id``, ``scope`` and ``state`` are read; the keys are never
read (list does not return them anyway) and never stored.

- The subscription id is the ARM ``name`` (the last segment of its ``id``). It is what the
  gateway logs as ``ApimSubscriptionId`` — Microsoft's gateway log schema describes that column as
  the "subscription entity identifier for current request", and the REST API calls the same
  ``{sid}`` path segment the "subscription entity identifier" — so usage rows and directory rows
  meet on it. It is *not* the display name, which finance sees instead.
- The owner is kept as the APIM user id from ``ownerId`` (``/users/{userId}``, e.g. ``1`` for the
  built-in administrator). Resolving it to a name or e-mail would cost a ``user.get`` per distinct
  owner on every sync, need read access to user records, and store personal data in the
  chargeback tables; a person can set a readable owner instead (``chargeback subscriptions set
  --owner``), which wins over ARM's.
- ``scope`` is made service-relative (``/products/{id}``, ``/apis/{id}``, ``/apis``): ARM returns
  it either way.

The SDK client is built per call with the app's credential (managed identity in Azure) and
``client_options`` passed through to azure-core (retries, timeouts, ``connection_verify``).
Bearer tokens are only sent over https (azure-core refuses http), so the endpoint must be https.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.core.apim_ids import ApimServiceRef, last_segment, owner_user_id, service_relative
from shared.core.cost_centers import ArmSubscription
from shared.errors import ChargebackError

log = logging.getLogger(__name__)
ARM_ENDPOINT = "https://management.azure.com"


class SubscriptionSourceError(ChargebackError):
    """ARM could not list one API Management service's subscriptions (the message names the service)."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))  # an SDK enum member, or the str ARM sent


def subscription_from_arm(item: Any) -> ArmSubscription | None:
    """A directory record from one SDK ``SubscriptionContract``; ``None`` for an item with no name or id."""
    sid = _text(getattr(item, "name", None)) or last_segment(_text(getattr(item, "id", None)))
    if not sid:
        return None
    return ArmSubscription(subscription_id=sid, display_name=_text(getattr(item, "display_name", None)),
                           owner=owner_user_id(getattr(item, "owner_id", None)),
                           scope=service_relative(_text(getattr(item, "scope", None))),
                           state=_text(getattr(item, "state", None)))


class ArmSubscriptionSource:
    """Implements ``SubscriptionSource`` (see :mod:`shared.services.subscription_sync`) through ARM."""

    def __init__(self, credential: Any, endpoint: str = ARM_ENDPOINT, **client_options: Any) -> None:
        self._credential = credential
        self._endpoint = endpoint.rstrip("/")
        self._options = client_options

    def subscriptions(self, service: ApimServiceRef) -> list[ArmSubscription]:
        from azure.core.exceptions import AzureError
        from azure.mgmt.apimanagement import ApiManagementClient

        try:
            with ApiManagementClient(self._credential, service.subscription_id, base_url=self._endpoint,
                                     **self._options) as client:
                items = list(client.subscription.list(service.resource_group, service.name))
        except AzureError as exc:
            status = getattr(exc, "status_code", None)
            answer = f"HTTP {status}" if status else type(exc).__name__
            raise SubscriptionSourceError(f"API Management service {service.resource_id}: ARM call failed "
                                          f"({answer})") from exc
        records = []
        for item in items:
            record = subscription_from_arm(item)
            if record is None:
                log.warning("subscription sync: %s listed a subscription with no name; skipped", service.name)
            else:
                records.append(record)
        return records
