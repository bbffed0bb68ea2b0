"""The APIM service in usage keys: a row without one keeps the key it always had, two services' rows of
one subscription get two keys in one partition, every key stays within the 512-character limit (the
period index's joined key included), and an entity without ``ApimService`` reads back as service ""."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.adapters.tables import usage_entity, usage_row
from shared.adapters.usage_index import MAX_INDEX_KEY, index_entity
from shared.core.keys import partition_key, row_key
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge, normalize_key

HOUR = datetime(2026, 11, 25, 13, tzinfo=UTC)


def test_a_row_without_a_service_keeps_its_old_key() -> None:
    assert (row_key(Granularity.HOUR, HOUR, UsageKey("team-a", "p1", "gpt-4o", "chat"))
            == "h|2026-11-25T13|gpt-4o|chat|p1")
    assert (row_key(Granularity.HOUR, HOUR, UsageKey("team-a", "p1", "gpt-4o", "chat", "apim-weu"))
            == "h|2026-11-25T13|gpt-4o|chat|p1|apim-weu")


def test_two_services_are_two_rows_of_one_partition() -> None:
    west, east = (UsageRow(Granularity.HOUR, HOUR, normalize_key("team-a", "p1", "gpt-4o", "chat", name),
                           Counters(requests=n)) for name, n in (("APIM-WEU", 2), ("apim-eus", 5)))
    assert west.key.apim_service == "apim-weu"  # lower-cased, as Log Analytics keeps resource ids
    entities = [usage_entity(west), usage_entity(east)]
    assert len({e["PartitionKey"] for e in entities}) == 1 == len({partition_key("team-a")})
    assert len({e["RowKey"] for e in entities}) == 2
    assert [r.counters.requests for r in merge([west, east], Granularity.DAY)] == [5, 2]  # eus sorts first


def test_an_entity_stored_before_services_reads_back_as_service_empty() -> None:
    entity = {k: v for k, v in usage_entity(UsageRow(Granularity.DAY, HOUR.replace(hour=0),
                                                      UsageKey("team-a", "p1", "m", "d", "apim-weu"),
                                                      Counters(requests=3))).items() if k != "ApimService"}
    assert usage_row(entity).key == UsageKey("team-a", "p1", "m", "d", "")
    assert "ApimService" not in usage_entity(usage_row(entity))  # and is written back as it was


@pytest.mark.parametrize("name", ["x" * 1500, "ü" * 700, "a/b#c?" * 100])
def test_longest_keys_fit_in_both_tables(name: str) -> None:
    row = UsageRow(Granularity.DAY, HOUR.replace(hour=0), UsageKey(name, name, name, name, name), Counters(requests=1))
    entity = usage_entity(row)
    indexed = index_entity(entity)
    assert len(entity["RowKey"]) <= 512 and len(entity["PartitionKey"]) <= 512
    assert len(indexed["RowKey"]) <= MAX_INDEX_KEY
    assert indexed["RowKey"].startswith(f"{entity['PartitionKey']} d|2026-11-25|")  # order: subscription, period
    other = index_entity(usage_entity(UsageRow(row.granularity, row.period_start,
                                               UsageKey(name, name, name, name, name + "!"), row.counters)))
    assert other["RowKey"] != indexed["RowKey"]  # shortened keys stay apart
