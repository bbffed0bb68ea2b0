"""Suspending / reactivating an APIM subscription through the ARM REST API (``SubscriptionControl``).

``PATCH {arm}{service id}/subscriptions/{sid}?api-version=2022-08-01`` with
``{"properties": {"state": "suspended"|"active"}}``, ``If-Match: *`` (the API requires an ETag or
``*``) and a bearer token for ``https://management.azure.com/.default`` from the app's credential.
Only built when ``ENFORCEMENT_MODE=on``; ``dryrun`` uses :class:`DryRunSubscriptionControl`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from shared.errors import EnforcementError

log = logging.getLogger(__name__)
API_VERSION = "2022-08-01"
ARM_ENDPOINT = "https://management.azure.com"
STATES = ("suspended", "active")


class ArmSubscriptionControl:
    def __init__(self, apim_resource_id: str, credential: Any, endpoint: str = ARM_ENDPOINT,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._service = apim_resource_id.rstrip("/")
        self._credential = credential
        self._endpoint = endpoint.rstrip("/")
        self._transport = transport

    def url(self, subscription_id: str) -> str:
        return (f"{self._endpoint}{self._service}/subscriptions/{quote(subscription_id, safe='')}"
                f"?api-version={API_VERSION}")

    def set_state(self, subscription_id: str, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        try:
            token = self._credential.get_token(f"{ARM_ENDPOINT}/.default").token
        except Exception as exc:  # azure-identity raises its own types; the message may be long
            raise EnforcementError(f"no ARM token for enforcement ({type(exc).__name__})") from exc
        headers = {"Authorization": f"Bearer {token}", "If-Match": "*", "Content-Type": "application/json"}
        try:
            with httpx.Client(timeout=httpx.Timeout(30.0), transport=self._transport) as client:
                response = client.patch(self.url(subscription_id), headers=headers,
                                        json={"properties": {"state": state}})
        except httpx.HTTPError as exc:
            raise EnforcementError(f"APIM subscription {subscription_id}: ARM call failed ({type(exc).__name__})") \
                from None
        if response.status_code == 404:
            raise EnforcementError(f"APIM subscription {subscription_id} not found in the API Management service")
        if response.status_code >= 300:
            raise EnforcementError(f"APIM subscription {subscription_id}: ARM answered HTTP {response.status_code}")
        log.warning("enforcement: APIM subscription %s set to %s", subscription_id, state)


class DryRunSubscriptionControl:
    """``ENFORCEMENT_MODE=dryrun``: says what it would do, changes nothing."""

    def set_state(self, subscription_id: str, state: str) -> None:
        log.warning("enforcement dry run: would set APIM subscription %s to %s", subscription_id, state)
