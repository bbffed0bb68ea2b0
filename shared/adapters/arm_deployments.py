"""Azure OpenAI deployments as ARM lists them (``azure-mgmt-cognitiveservices``), as catalog records.

``deployments.list(resource_group, account)`` pages through ``nextLink``; the account's region
comes from ``accounts.get`` (a deployment carries no location of its own). ``sku.capacity`` is
kept as PTUs only for provisioned SKUs: for Standard and Batch SKUs it is a rate limit in thousands
of tokens per minute, not a billed quantity (see :mod:`shared.core.deployments`). An SKU the
catalog does not know keeps its name and no PTU count; it is reported by the sync, not guessed.

The SDK client is built per call with the app's credential (managed identity in Azure) and
``client_options`` passed through to azure-core (retries, timeouts, ``connection_verify``).
Bearer tokens are only sent over https (azure-core refuses http), so the endpoint must be https.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.core.deployments import AccountRef, BillingMode, Deployment, Source, sku_kind
from shared.errors import ChargebackError

ARM_ENDPOINT = "https://management.azure.com"


class DeploymentSourceError(ChargebackError):
    """ARM could not list one account's deployments (the message names the account)."""


def record_from_arm(item: Any, account: AccountRef, region: str, observed_at: datetime) -> Deployment:
    """A catalog record from one SDK ``Deployment`` model."""
    sku = getattr(item, "sku", None)
    sku_name = str(getattr(sku, "name", None) or "")
    capacity = getattr(sku, "capacity", None)
    kind = sku_kind(sku_name)
    provisioned = kind is not None and kind.mode is BillingMode.PROVISIONED
    model = getattr(getattr(item, "properties", None), "model", None)
    return Deployment(name=str(item.name), account=account.resource_id,
                      model=str(getattr(model, "name", None) or ""),
                      model_version=str(getattr(model, "version", None) or ""),
                      sku=sku_name, region=region,
                      ptus=int(capacity) if provisioned and capacity is not None else None,
                      effective_from=observed_at, source=Source.ARM)


class ArmDeploymentSource:
    """Implements ``DeploymentSource`` (see :mod:`shared.services.deployment_sync`) through ARM."""

    def __init__(self, credential: Any, endpoint: str = ARM_ENDPOINT, **client_options: Any) -> None:
        self._credential = credential
        self._endpoint = endpoint.rstrip("/")
        self._options = client_options

    def deployments(self, account: AccountRef, observed_at: datetime) -> list[Deployment]:
        from azure.core.exceptions import AzureError
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        try:
            with CognitiveServicesManagementClient(self._credential, account.subscription_id,
                                                   base_url=self._endpoint, **self._options) as client:
                region = client.accounts.get(account.resource_group, account.name).location or ""
                items = list(client.deployments.list(account.resource_group, account.name))
        except AzureError as exc:
            status = getattr(exc, "status_code", None)
            answer = f"HTTP {status}" if status else type(exc).__name__
            raise DeploymentSourceError(f"account {account.resource_id}: ARM call failed ({answer})") from exc
        return [record_from_arm(item, account, region, observed_at) for item in items]
