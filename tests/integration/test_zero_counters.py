"""Zero counters are not stored: against Azurite, a usage row's entity holds only its non-zero
counters, reads back with every counter (absent = 0), and a counter that drops back to zero leaves
the entity when the row is written again (a write replaces the entity)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.composition import table_store
from shared.core.keys import partition_key
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.settings import Settings

DAY = datetime(2026, 11, 3, tzinfo=UTC)
KEY = UsageKey("team-z", "starter", "gpt-4o", "chat")


def test_only_non_zero_counters_are_stored_and_all_read_back(settings: Settings) -> None:
    store = table_store(settings)
    cached = Counters(requests=3, prompt_tokens=300, completion_tokens=30, total_tokens=330, cached_tokens=120)
    store.upsert([UsageRow(Granularity.DAY, DAY, KEY, cached)])
    client = store.table_client(store.usage_table)
    (entity,) = client.query_entities("PartitionKey eq @pk", parameters={"pk": partition_key("team-z")})
    counters = {name for name in entity if name.endswith(("Tokens", "Requests", "Streamed", "Truncated"))}
    assert counters == {"Requests", "PromptTokens", "CompletionTokens", "TotalTokens", "CachedTokens"}
    assert store.read("team-z", Granularity.DAY, DAY, DAY + timedelta(days=1)) == [
        UsageRow(Granularity.DAY, DAY, KEY, cached)]
    # index copy alike, and an all-subscription read gives the same counters
    assert store.read_all(Granularity.DAY, DAY, DAY + timedelta(days=1)) == [
        UsageRow(Granularity.DAY, DAY, KEY, cached)]

    uncached = Counters(requests=4, prompt_tokens=400, completion_tokens=40, total_tokens=440)
    store.upsert([UsageRow(Granularity.DAY, DAY, KEY, uncached)])
    (entity,) = client.query_entities("PartitionKey eq @pk", parameters={"pk": partition_key("team-z")})
    assert "CachedTokens" not in entity and entity["Requests"].value == 4
    assert store.read("team-z", Granularity.DAY, DAY, DAY + timedelta(days=1))[0].counters == uncached
    assert store.read_all(Granularity.DAY, DAY, DAY + timedelta(days=1))[0].counters == uncached
