"""Table entities as JSON, typed exactly as the Azure SDK types them, and batch limits."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.data.tables import EdmType, EntityProperty
from azure.data.tables._serialize import _add_entity_properties  # the SDK's rules, to compare with

from shared.adapters.table_batch import entity_json, submit_replace
from shared.errors import StorageError

AT = datetime(2026, 11, 25, 13, 7, 9, 123456, tzinfo=UTC)


def sample(partition: str, row: str, n: int = 1) -> dict[str, Any]:
    """One entity with every property type the chargeback tables store."""
    return {
        "PartitionKey": partition, "RowKey": row, "Text": f"naïve 漢字 'quoted' \"double\" {n}", "Empty": "",
        "Flag": n % 2 == 0, "Small": -(2**31) + n, "Big": EntityProperty(2**62 + n, EdmType.INT64),
        "Ratio": 0.1 * n, "Whole": float(n), "Nan": math.nan, "Inf": -math.inf,
        "When": AT + timedelta(hours=n), "Offset": (AT + timedelta(hours=n)).astimezone(timezone(timedelta(hours=5))),
        "Missing": None,
    }


def test_entities_are_typed_exactly_as_the_sdk_types_them() -> None:
    for entity in (sample("p", "r", n) for n in range(4)):
        assert entity_json(entity) == _add_entity_properties(entity)


@pytest.mark.parametrize("value", [datetime(2026, 1, 1), 2**31, EntityProperty(2**31, EdmType.INT32), [1]])
def test_unsupported_values_are_refused_not_guessed(value: Any) -> None:
    with pytest.raises(TypeError):
        entity_json({"PartitionKey": "p", "RowKey": "r", "Bad": value})


def test_transactions_hold_one_partition_and_at_most_100() -> None:
    with pytest.raises(ValueError):
        submit_replace(None, [{"PartitionKey": "a", "RowKey": "1"}, {"PartitionKey": "b", "RowKey": "1"}])
    with pytest.raises(ValueError):
        submit_replace(None, [{"PartitionKey": "a", "RowKey": str(n)} for n in range(101)])
    assert submit_replace(None, []) == 0


def test_the_fast_path_fails_loudly_when_the_sdk_internals_moved() -> None:
    """The one seam onto TableClient._client names the installed SDK version instead of an AttributeError."""
    from importlib.metadata import version

    from shared.adapters.table_rest import send

    class UpgradedClient:  # an SDK whose TableClient no longer has the generated client attribute
        url = "http://127.0.0.1:1/devstoreaccount1"
        table_name = "t"

    with pytest.raises(StorageError, match=rf"azure-data-tables {version('azure-data-tables')} has no "
                                           r"TableClient\._client\.send_request.*12\.7\.0"):
        send(UpgradedClient(), object())
