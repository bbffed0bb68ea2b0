"""The service tier in usage keys: a default-tier row keeps the key it always had, a priority row is a
row of its own in the same partition whose RowKey can never be taken for a service's, an entity stored
before tiers were kept reads back as tier "", the query's tier answers are normalised, and the longest
keys still fit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.adapters.tables import usage_entity, usage_row
from shared.adapters.usage_index import MAX_INDEX_KEY, index_entity
from shared.core.keys import row_key
from shared.core.usage import PRIORITY_TIER, Counters, Granularity, UsageKey, UsageRow, merge, normalize_key
from shared.services.rollup import usage_rows

HOUR = datetime(2026, 11, 25, 13, tzinfo=UTC)


def test_default_tier_rows_keep_their_keys_and_priority_rows_get_a_seventh_part() -> None:
    assert (row_key(Granularity.HOUR, HOUR, UsageKey("team-a", "p1", "gpt-4o", "chat"))
            == "h|2026-11-25T13|gpt-4o|chat|p1")
    assert (row_key(Granularity.HOUR, HOUR, UsageKey("team-a", "p1", "gpt-4o", "chat", "apim-weu"))
            == "h|2026-11-25T13|gpt-4o|chat|p1|apim-weu")
    assert (row_key(Granularity.HOUR, HOUR, UsageKey("team-a", "p1", "gpt-4o", "chat", "", PRIORITY_TIER))
            == "h|2026-11-25T13|gpt-4o|chat|p1||priority")
    assert (row_key(Granularity.DAY, HOUR, UsageKey("team-a", "p1", "gpt-4o", "chat", "apim-weu", PRIORITY_TIER))
            == "d|2026-11-25|gpt-4o|chat|p1|apim-weu|priority")


def test_a_priority_row_is_never_the_row_of_a_service_named_priority() -> None:
    tiered = UsageKey("team-a", "p1", "gpt-4o", "chat", "", PRIORITY_TIER)
    named = UsageKey("team-a", "p1", "gpt-4o", "chat", "priority")
    assert row_key(Granularity.HOUR, HOUR, tiered) != row_key(Granularity.HOUR, HOUR, named)


def test_two_tiers_are_two_rows_of_one_partition_and_merge_apart() -> None:
    default, priority = (UsageRow(Granularity.HOUR, HOUR, normalize_key("team-a", "p1", "gpt-4o", "chat", "", tier),
                                  Counters(requests=n, prompt_tokens=10 * n)) for tier, n in (("", 2), ("priority", 5)))
    entities = [usage_entity(default), usage_entity(priority)]
    assert len({e["PartitionKey"] for e in entities}) == 1 and len({e["RowKey"] for e in entities}) == 2
    assert "ServiceTier" not in entities[0] and entities[1]["ServiceTier"] == "priority"
    days = merge([default, priority, default], Granularity.DAY)
    assert [(r.key.service_tier, r.counters.requests, r.counters.prompt_tokens) for r in days] == [
        ("", 4, 40), ("priority", 5, 50)]


def test_an_entity_stored_before_tiers_reads_back_as_tier_empty() -> None:
    stored = usage_entity(UsageRow(Granularity.DAY, HOUR.replace(hour=0),
                                   UsageKey("team-a", "p1", "m", "d", "apim-weu"), Counters(requests=3)))
    assert "ServiceTier" not in stored
    back = usage_row(stored)
    assert back.key.service_tier == "" and back.key == UsageKey("team-a", "p1", "m", "d", "apim-weu")
    assert usage_entity(back) == stored  # written back exactly as it was
    priority = usage_entity(UsageRow(Granularity.DAY, HOUR.replace(hour=0),
                                     UsageKey("team-a", "p1", "m", "d", "", PRIORITY_TIER), Counters(requests=1)))
    assert usage_row(priority).key.service_tier == PRIORITY_TIER


@pytest.mark.parametrize(("answer", "tier"), [("priority", "priority"), (" Priority ", "priority"), ("", ""),
                                              (None, ""), ("default", ""), ("auto", ""), ("flex", "")])
def test_only_priority_is_a_tier_of_its_own(answer: object, tier: str) -> None:
    assert normalize_key("team-a", "p1", "m", "d", "", answer).service_tier == tier


def test_the_rollup_keeps_the_query_tier_and_sums_what_normalises_alike() -> None:
    base = {"PeriodStart": HOUR, "SubscriptionId": "team-a", "ProductId": "p1", "Model": "gpt-4o", "Deployment": "chat",
            "PromptTokens": 0, "CompletionTokens": 0, "TotalTokens": 0, "CachedTokens": 0, "StreamedRequests": 0,
            "ErrorRequests": 0, "UnmeteredRequests": 0, "UnmeteredStreamed": 0, "UnmeteredTruncated": 0,
            "ReasoningTokens": 0, "AudioPromptTokens": 0, "CachedAudioTokens": 0, "AudioCompletionTokens": 0,
            "CacheWriteTokens": 0, "ApimService": ""}
    records = [{**base, "Requests": 1, "ServiceTier": "priority"}, {**base, "Requests": 2, "ServiceTier": ""},
               {**base, "Requests": 4}]  # a record without the column (an older query): default tier
    assert sorted((r.key.service_tier, r.counters.requests) for r in usage_rows(records)) == [("", 6),
                                                                                            ("priority", 1)]


@pytest.mark.parametrize("name", ["x" * 1500, "ü" * 700])
def test_longest_priority_keys_fit_in_both_tables(name: str) -> None:
    row = UsageRow(Granularity.HOUR, HOUR, UsageKey(name, name, name, name, name, PRIORITY_TIER), Counters(requests=1))
    entity = usage_entity(row)
    assert len(entity["RowKey"]) <= 512 and entity["RowKey"].endswith("|priority")
    assert len(index_entity(usage_entity(UsageRow(Granularity.DAY, HOUR.replace(hour=0), row.key, row.counters)))
               ["RowKey"]) <= MAX_INDEX_KEY
