"""Negotiated rates in Table Storage (``<prefix>rateoverrides``).

PartitionKey ``override``; RowKey = ``model|deployment type|effective date`` (model made safe for
keys).  The family, the date, the discount and the explicit rates (a JSON object of exact decimal
strings per token kind) are stored as properties; nothing is decoded from a key.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from shared.adapters.table_access import TableAccess
from shared.core.keys import encode_part
from shared.core.rate_overrides import RateOverride
from shared.errors import NotFoundError

RATE_OVERRIDES = "rateoverrides"
PARTITION = "override"


def row_key(model: str, deployment_type: str, effective_from: date) -> str:
    return f"{encode_part(model.strip().lower())}|{deployment_type}|{effective_from.isoformat()}"


def override_entity(override: RateOverride) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": row_key(override.model, override.deployment_type, override.effective_from),
        "Model": override.model,
        "DeploymentType": override.deployment_type,
        "EffectiveFrom": override.effective_from.isoformat(),
        "Rates": json.dumps({kind: format(rate, "f") for kind, rate in sorted(override.rates.items())}),
        "Note": override.note,
    }
    if override.discount_percent is not None:
        entity["DiscountPercent"] = format(override.discount_percent, "f")
    return entity


def override_from(entity: Any) -> RateOverride:
    discount = entity.get("DiscountPercent")
    rates = json.loads(str(entity.get("Rates") or "{}"))
    return RateOverride(str(entity["Model"]), str(entity["DeploymentType"]),
                        date.fromisoformat(str(entity["EffectiveFrom"])),
                        None if discount in (None, "") else Decimal(str(discount)),
                        {str(kind): Decimal(str(rate)) for kind, rate in rates.items()}, str(entity.get("Note") or ""))


class RateOverrideTableStore:
    """Implements ``shared.services.costing.RateOverrideRepository``."""

    def __init__(self, access: TableAccess) -> None:
        self._access = access

    def list_overrides(self) -> list[RateOverride]:
        table = self._access.table(RATE_OVERRIDES)
        entities = self._access.call(lambda: list(table.query_entities("PartitionKey eq @pk",
                                                                       parameters={"pk": PARTITION})))
        return sorted((override_from(e) for e in entities), key=lambda o: (o.family, o.effective_from))

    def put_override(self, override: RateOverride) -> None:
        from azure.data.tables import UpdateMode

        table = self._access.table(RATE_OVERRIDES)
        entity = override_entity(override)
        self._access.call(lambda: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def delete_override(self, model: str, deployment_type: str, effective_from: date) -> bool:
        table = self._access.table(RATE_OVERRIDES)
        key = row_key(model, deployment_type, effective_from)
        try:
            self._access.call(lambda: table.get_entity(PARTITION, key))
        except NotFoundError:
            return False
        self._access.call(lambda: table.delete_entity(PARTITION, key))
        return True
