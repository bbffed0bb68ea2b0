"""The period index spread over shards, against Azurite: an all-subscription read of one period
merges the shards back into the usage table's order, page by page, and resumes where a page ended;
touched marks of the previous layout are still read; an index of the previous layout is not read
until it is rebuilt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.tables import TableStore
from shared.adapters.usage_index import META_PARTITION
from shared.adapters.usage_index_rebuild import rebuild
from shared.adapters.usage_pages import MERGED, TableUsagePages
from shared.composition import table_store
from shared.core.keys import partition_key
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.errors import InvalidRequestError
from shared.settings import Settings

MONTH = datetime(2026, 10, 1, tzinfo=UTC)
DAY = datetime(2026, 10, 7, tzinfo=UTC)
SUBSCRIPTIONS = 1_200  # with two keys: 2,400 rows of a period, spread over every shard


def stored(settings: Settings) -> tuple[TableStore, list[UsageRow]]:
    """Two keys of each subscription: a month row and a day row; also a day row of the day before
    (another period: never in the day's read)."""
    store = table_store(settings)
    rows = [UsageRow(granularity, start, UsageKey(f"team-{n:04d}", "product", model, "deployment"),
                     Counters(requests=n + 1, prompt_tokens=7 * n))
            for n in range(SUBSCRIPTIONS) for model in ("gpt-4o", "gpt-4o-mini")
            for granularity, start in ((Granularity.MONTH, MONTH), (Granularity.DAY, DAY))]
    rows.append(UsageRow(Granularity.DAY, DAY - timedelta(days=1), UsageKey("team-0001", "product", "gpt-4o", "d"),
                         Counters(requests=5)))
    store.upsert(rows)
    return store, rows


def usage_order(rows: list[UsageRow], granularity: Granularity, start: datetime) -> list[UsageRow]:
    """The period's rows in the usage table's order: subscription key, then the rest of the RowKey
    (here: ``<period>|<model>|...``, as product and deployment are the same; ``gpt-4o-mini|`` sorts
    before ``gpt-4o|``)."""
    chosen = [row for row in rows if row.granularity is granularity and row.period_start == start]
    return sorted(chosen, key=lambda row: (partition_key(row.subscription_id), f"{row.key.model}|"))


def test_a_period_read_merges_the_shards_into_the_usage_order_and_resumes(settings: Settings) -> None:
    store, rows = stored(settings)
    index = store.table_client(store.index_table)
    shards = {entity["PartitionKey"].split("|", 1)[0] for entity in index.list_entities(select=["PartitionKey"])
              if entity["PartitionKey"] != META_PARTITION}
    assert shards == {f"s{n:02d}" for n in range(16)}
    pages = TableUsagePages(store)
    for granularity, start, end in ((Granularity.MONTH, MONTH, MONTH + timedelta(days=31)),
                                    (Granularity.DAY, DAY, DAY + timedelta(days=1))):
        expected = usage_order(rows, granularity, start)
        read = list(pages.pages(None, granularity, start, end))
        assert [len(page.rows) for page in read] == [1000, 1000, 400]
        assert [row for page in read for row in page.rows] == expected
        assert read[0].start is None and read[-1].following is None
        assert [page.start for page in read[1:]] == [page.following for page in read[:-1]]
        # a report resumes from a page's start: the same rows from there on
        resumed = list(pages.pages(None, granularity, start, end, read[1].start))
        assert [row for page in resumed for row in page.rows] == expected[1000:]
        assert read[1].start is not None and read[1].start[0] == MERGED
        assert store.read_all(granularity, start, end) == expected


def test_a_token_holding_another_reads_continuation_is_refused(settings: Settings) -> None:
    store, _ = stored(settings)
    with pytest.raises(InvalidRequestError, match="first page"):
        list(TableUsagePages(store).pages(None, Granularity.DAY, DAY, DAY + timedelta(days=1), ("d|2026-10-07", "x")))


def test_month_sums_and_day_listing_read_every_shard(settings: Settings) -> None:
    store, _ = stored(settings)
    wanted = frozenset(f"team-{n:04d}" for n in range(0, SUBSCRIPTIONS, 3))
    sums = store.month_sums(MONTH, wanted)
    assert sums is not None and {row.subscription_id for row in sums} == wanted
    team_one = [row for row in sums if row.subscription_id == "team-0003"]
    assert [(row.key.model, row.counters.requests, row.counters.prompt_tokens) for row in team_one] == [
        ("gpt-4o", 4, 21), ("gpt-4o-mini", 4, 21)]  # the day row of Oct 7 only (no other day of October)
    assert store.indexed_subscriptions(DAY) == frozenset({f"team-{n:04d}" for n in range(SUBSCRIPTIONS)})
    assert store.indexed_subscriptions(DAY - timedelta(days=1)) == frozenset({"team-0001"})


def test_touched_marks_of_both_layouts_are_read(settings: Settings) -> None:
    store = table_store(settings)
    store.mark_touched([(f"team-{n}", DAY) for n in range(40)] + [("team-late", DAY + timedelta(days=1))])
    # a mark the previous layout wrote: the meta partition, RowKey ``touched|d|<day> <subscription key>``
    index = store.table_client(store.index_table)
    index.upsert_entity({"PartitionKey": META_PARTITION, "RowKey": f"touched|d|2026-10-07 {partition_key('old')}",
                         "SubscriptionId": "old"})
    marks = [entity["PartitionKey"] for entity in index.list_entities() if "|t|" in entity["PartitionKey"]]
    assert len(marks) == 41 and len({mark.split("|")[0] for mark in marks}) > 4
    assert store.touched_subscriptions(DAY) == {*(f"team-{n}" for n in range(40)), "old"}
    assert store.touched_subscriptions(DAY + timedelta(days=1)) == {"team-late"}


def test_an_index_of_the_previous_layout_is_not_read_until_rebuilt(settings: Settings) -> None:
    store, rows = stored(settings)
    index = store.table_client(store.index_table)
    marker = next(entity for entity in index.list_entities() if entity["PartitionKey"] == META_PARTITION)
    index.delete_entity(META_PARTITION, marker["RowKey"])
    index.upsert_entity({"PartitionKey": META_PARTITION, "RowKey": "complete"})  # the previous layout's marker
    # and one entity the previous layout would have read for the day: never read by this one
    index.upsert_entity({"PartitionKey": "d|2026-10-07", "RowKey": "ghost", "Requests": 10**9})
    upgraded = table_store(settings)
    assert not upgraded.index_complete()
    expected = usage_order(rows, Granularity.DAY, DAY)
    assert sorted(map(repr, upgraded.read_all(Granularity.DAY, DAY, DAY + timedelta(days=1)))) == sorted(
        map(repr, expected))  # scanned from the usage table
    rebuild(upgraded)
    assert upgraded.index_complete()
    assert upgraded.read_all(Granularity.DAY, DAY, DAY + timedelta(days=1)) == expected
