"""Quotas (``<prefix>quotas``) and operator price overrides (``<prefix>prices``) in Table Storage.

Quotas: PartitionKey = encoded subscription id (``*`` = the default quota), RowKey = period
(``day``/``month``); limits as Int64 tokens and an exact decimal string for cost.
Prices: PartitionKey ``price``, RowKey = ``model|effective date``; amounts as decimal strings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from shared.adapters.entity_values import decimal_or_none, int64, plain
from shared.adapters.table_access import TableAccess
from shared.core.keys import encode_part, partition_key
from shared.core.pricing import Price
from shared.core.quotas import Period, Quota
from shared.errors import NotFoundError

QUOTAS = "quotas"
PRICES = "prices"
PRICE_PARTITION = "price"


def quota_entity(quota: Quota, now: datetime) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": partition_key(quota.subscription_id),
        "RowKey": quota.period.value,
        "SubscriptionId": quota.subscription_id,
        "Period": quota.period.value,
        "UpdatedAt": now,
    }
    if quota.max_tokens is not None:
        entity["MaxTokens"] = int64(quota.max_tokens)
    if quota.max_cost is not None:
        entity["MaxCost"] = str(quota.max_cost)
    return entity


def quota_from(entity: Any) -> Quota:
    tokens = plain(entity.get("MaxTokens"))
    return Quota(str(entity["SubscriptionId"]), Period(entity["Period"]),
                 None if tokens is None else int(tokens), decimal_or_none(entity.get("MaxCost")))


class QuotaTableStore:
    """Implements ``QuotaRepository``."""

    def __init__(self, access: TableAccess) -> None:
        self._access = access

    def put(self, quota: Quota) -> None:
        from azure.data.tables import UpdateMode

        table = self._access.table(QUOTAS)
        entity = quota_entity(quota, datetime.now(UTC))
        self._access.call(lambda: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def for_subscription(self, subscription_id: str) -> list[Quota]:
        table = self._access.table(QUOTAS)
        parameters = {"pk": partition_key(subscription_id)}
        entities = self._access.call(lambda: list(table.query_entities("PartitionKey eq @pk",
                                                                       parameters=parameters)))
        # the key answers for its own subscription only (shared.core.keys)
        return sorted((q for q in map(quota_from, entities) if q.subscription_id == subscription_id),
                      key=lambda q: q.period.value)

    def all(self) -> list[Quota]:
        table = self._access.table(QUOTAS)
        entities = self._access.call(lambda: list(table.list_entities()))
        return sorted((quota_from(e) for e in entities), key=lambda q: (q.subscription_id, q.period.value))

    def delete(self, subscription_id: str, period: Period | None) -> int:
        table = self._access.table(QUOTAS)
        existing = [q for q in self.for_subscription(subscription_id) if period is None or q.period is period]
        for quota in existing:
            key = partition_key(quota.subscription_id)
            self._access.call(partial(table.delete_entity, key, quota.period.value))
        return len(existing)


def price_entity(price: Price, currency: str) -> dict[str, Any]:
    return {
        "PartitionKey": PRICE_PARTITION,
        "RowKey": f"{encode_part(price.model.lower())}|{price.effective_from.isoformat()}",
        "Model": price.model,
        "EffectiveFrom": price.effective_from.isoformat(),
        "Input": str(price.input),
        "CachedInput": str(price.cached_input),
        "Output": str(price.output),
        "Currency": currency,
    }


class PriceTableStore:
    """Implements ``PriceOverrideRepository``: operator prices laid over the price file."""

    def __init__(self, access: TableAccess) -> None:
        self._access = access

    def list_prices(self) -> list[tuple[Price, str]]:
        """(price, currency it was set in) for every override."""
        table = self._access.table(PRICES)
        entities = self._access.call(lambda: list(table.query_entities("PartitionKey eq @pk",
                                                                       parameters={"pk": PRICE_PARTITION})))
        return [(Price(str(e["Model"]), date.fromisoformat(str(e["EffectiveFrom"])), Decimal(str(e["Input"])),
                       Decimal(str(e["CachedInput"])), Decimal(str(e["Output"]))), str(e.get("Currency") or ""))
                for e in entities]

    def put_price(self, price: Price, currency: str) -> None:
        from azure.data.tables import UpdateMode

        table = self._access.table(PRICES)
        entity = price_entity(price, currency)
        self._access.call(lambda: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def delete_price(self, model: str, effective_from: date) -> bool:
        table = self._access.table(PRICES)
        row = f"{encode_part(model.strip().lower())}|{effective_from.isoformat()}"
        try:
            self._access.call(lambda: table.get_entity(PRICE_PARTITION, row))
        except NotFoundError:
            return False
        self._access.call(lambda: table.delete_entity(PRICE_PARTITION, row))
        return True
