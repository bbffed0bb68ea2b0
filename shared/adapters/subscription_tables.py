"""APIM subscription records (the cost-center directory) in ``<prefix>subscriptions``, and an in-memory stand-in.

One row per subscription: PartitionKey = the lower-cased subscription id made safe for keys
(:func:`shared.core.keys.partition_key`: any id, however hostile, is a valid key), RowKey
``info``. The id as spelled and every field are properties; nothing is decoded from a key.

The sync and a manual ``set`` write disjoint properties with insert-or-merge, so whichever runs
last, neither puts back the other's old values:

- ARM's: ``DisplayName``, ``Scope``, ``State``, ``ArmOwner``, ``ListedByArm``;
- a person's: ``CostCenter``, ``BusinessUnit``, ``ManualOwner`` (``""`` = none), ``Tags``;
- both: ``SubscriptionId`` and ``UpdatedAt``.

Tags are JSON text. A string property holds at most 64 KiB (32K UTF-16 units), and 50 tags of
256-character names and values can escape to more than that, so the text is cut over
:data:`TAG_COLUMNS` properties; every one is always written, so a shorter map leaves no stale tail.
"""

from __future__ import annotations

import json
from typing import Any

from shared.adapters.entity_values import plain, utc
from shared.adapters.table_access import TableAccess
from shared.core.cost_centers import SubscriptionInfo, subscription_key
from shared.core.deployments import Source
from shared.core.keys import partition_key
from shared.errors import NotFoundError

SUBSCRIPTIONS = "subscriptions"
ROW = "info"
TAG_COLUMNS = ("Tags", "Tags1", "Tags2", "Tags3")
TAG_CHUNK = 16_000  # characters: at most 32,000 UTF-16 units even if every one is outside the BMP


def _key(subscription_id: str) -> dict[str, str]:
    return {"PartitionKey": partition_key(subscription_key(subscription_id)), "RowKey": ROW}


def arm_entity(record: SubscriptionInfo) -> dict[str, Any]:
    return {**_key(record.subscription_id), "SubscriptionId": record.subscription_id,
            "DisplayName": record.display_name, "Scope": record.scope, "State": record.state,
            "ArmOwner": record.arm_owner, "ListedByArm": True, "UpdatedAt": record.updated_at}


def tag_columns(tags: dict[str, str]) -> dict[str, str]:
    text = json.dumps(tags, ensure_ascii=False, sort_keys=True) if tags else ""
    chunks = [text[at:at + TAG_CHUNK] for at in range(0, len(text), TAG_CHUNK)]
    if len(chunks) > len(TAG_COLUMNS):  # cannot happen within the validated limits; never truncate silently
        raise ValueError(f"tags need {len(text)} characters of JSON, more than {len(TAG_COLUMNS)} columns hold")
    chunks += [""] * (len(TAG_COLUMNS) - len(chunks))
    return dict(zip(TAG_COLUMNS, chunks, strict=True))


def manual_entity(record: SubscriptionInfo) -> dict[str, Any]:
    return {**_key(record.subscription_id), "SubscriptionId": record.subscription_id,
            "CostCenter": record.cost_center, "BusinessUnit": record.business_unit,
            "ManualOwner": record.owner if record.owner_is_manual else "", **tag_columns(record.tags),
            "UpdatedAt": record.updated_at}


def _text(entity: Any, name: str) -> str:
    value = plain(entity.get(name))
    return "" if value is None else str(value)


def record_from(entity: Any) -> SubscriptionInfo:
    tags_text = "".join(_text(entity, column) for column in TAG_COLUMNS)
    tags = json.loads(tags_text) if tags_text else {}
    manual_owner, arm_owner = _text(entity, "ManualOwner"), _text(entity, "ArmOwner")
    return SubscriptionInfo(
        subscription_id=_text(entity, "SubscriptionId"), display_name=_text(entity, "DisplayName"),
        owner=manual_owner or arm_owner, scope=_text(entity, "Scope"), state=_text(entity, "State"),
        cost_center=_text(entity, "CostCenter"), business_unit=_text(entity, "BusinessUnit"),
        tags={str(k): str(v) for k, v in tags.items()},
        source=Source.ARM if plain(entity.get("ListedByArm")) else Source.MANUAL,
        updated_at=utc(entity.get("UpdatedAt")), arm_owner=arm_owner, owner_is_manual=bool(manual_owner))


def _without_none(entity: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in entity.items() if value is not None}


def _order(record: SubscriptionInfo) -> str:
    return record.key


class SubscriptionTableStore:
    """Implements ``SubscriptionInfoRepository`` on Table Storage."""

    def __init__(self, access: TableAccess) -> None:
        self._access = access

    def get(self, subscription_id: str) -> SubscriptionInfo | None:
        table = self._access.table(SUBSCRIPTIONS)
        key = _key(subscription_id)
        try:
            entity = self._access.call(lambda: table.get_entity(key["PartitionKey"], key["RowKey"]))
        except NotFoundError:
            return None
        return record_from(entity)

    def all(self) -> list[SubscriptionInfo]:
        table = self._access.table(SUBSCRIPTIONS)
        entities = self._access.call(lambda: list(table.list_entities()))
        return sorted((record_from(e) for e in entities), key=_order)

    def save_arm_fields(self, record: SubscriptionInfo) -> None:
        self._merge(arm_entity(record))

    def save_manual_fields(self, record: SubscriptionInfo) -> None:
        self._merge(manual_entity(record))

    def _merge(self, entity: dict[str, Any]) -> None:
        from azure.data.tables import UpdateMode

        table = self._access.table(SUBSCRIPTIONS)
        entity = _without_none(entity)
        self._access.call(lambda: table.upsert_entity(entity, mode=UpdateMode.MERGE))


class MemorySubscriptionStore:
    """Implements ``SubscriptionInfoRepository`` in memory (unit tests): same keys, same merge of properties."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, subscription_id: str) -> SubscriptionInfo | None:
        key = _key(subscription_id)
        entity = self._rows.get((key["PartitionKey"], key["RowKey"]))
        return None if entity is None else record_from(entity)

    def all(self) -> list[SubscriptionInfo]:
        return sorted((record_from(e) for e in self._rows.values()), key=_order)

    def save_arm_fields(self, record: SubscriptionInfo) -> None:
        self._merge(arm_entity(record))

    def save_manual_fields(self, record: SubscriptionInfo) -> None:
        self._merge(manual_entity(record))

    def _merge(self, entity: dict[str, Any]) -> None:
        self._rows.setdefault((entity["PartitionKey"], entity["RowKey"]), {}).update(_without_none(entity))

    def entities(self) -> list[dict[str, Any]]:
        """The stored rows as the table would hold them (for tests that check what is written)."""
        return [dict(e) for _, e in sorted(self._rows.items())]
