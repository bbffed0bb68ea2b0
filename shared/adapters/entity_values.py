"""Values as Table Storage gives them back, made plain: Int64 unwrapped, datetimes aware UTC, Decimals
from their stored text.  One home for the conversions every table adapter needs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    return getattr(value, "value", value)  # Int64 values come back wrapped in EntityProperty


def utc(value: Any) -> datetime | None:
    if value is None:
        return None
    moment: datetime = plain(value)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def int64(value: int) -> Any:
    from azure.data.tables import EdmType, EntityProperty

    return EntityProperty(value, EdmType.INT64)


def decimal_or_none(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(plain(value)))


def without_metadata(entity: Any) -> dict[str, Any]:
    return {key: plain(value) for key, value in dict(entity).items()}


def stored_names(entity: Mapping[str, Any]) -> tuple[str, str, str, str, str, str]:
    """A usage entity's key names in ``UsageKey`` order, exactly as stored (normalized when the row
    was built); a row stored before services or tiers were part of the key reads back ``""``."""
    return (entity.get("SubscriptionId", ""), entity.get("ProductId", ""), entity.get("Model", ""),
            entity.get("Deployment", ""), entity.get("ApimService") or "", entity.get("ServiceTier") or "")
