"""The bench's Table Storage stand-in (``bench.table_sink``) answers the real SDK and the project's
TableStore as the service does, on a small case: hourly usage rows counted and dropped, every other
entity kept and read back (point reads, key ranges, the period index, continuation past 1,000
entities), conditional writes by ETag, the service's errors, and quoted filter values."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, TableServiceClient, TableTransactionError, UpdateMode

from bench.table_sink import TableSinkProcess
from shared.adapters.run_lease import TableLease
from shared.adapters.table_query import query_pages
from shared.adapters.tables import TableStore
from shared.adapters.usage_index import shard_of
from shared.composition import table_store
from shared.core.keys import partition_key
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.errors import AlreadyExistsError, ConcurrentUpdateError, LeaseLostError
from shared.ports import Watermark
from tests.conftest import make_settings

MONTH = datetime(2026, 9, 1, tzinfo=UTC)
DAYS = 2
SUBSCRIPTIONS = ("sub-a", "o'brien", "sub-c")  # one with a quote: keys and filter literals escape it


@pytest.fixture(scope="module")
def sink() -> Iterator[TableSinkProcess]:
    with TableSinkProcess() as process:
        yield process


@pytest.fixture
def store(sink: TableSinkProcess, tmp_path: Path) -> TableStore:
    return table_store(make_settings(tmp_path / "unused.duckdb", sink.connection_string))


def requests_of(subscription_index: int, hour: int) -> int:
    return 1 + (subscription_index * 5 + hour) % 11


def hourly_rows() -> list[UsageRow]:
    return [UsageRow(Granularity.HOUR, MONTH + timedelta(hours=h), UsageKey(sub, "product", "gpt-4o", "dep"),
                     Counters(requests=requests_of(s, h), prompt_tokens=requests_of(s, h) * 2**32))
            for s, sub in enumerate(SUBSCRIPTIONS) for h in range(DAYS * 24)]


def day_rows() -> list[UsageRow]:
    return [UsageRow(Granularity.DAY, MONTH + timedelta(days=d), UsageKey(sub, "product", "gpt-4o", "dep"),
                     Counters(requests=sum(requests_of(s, h) for h in range(d * 24, d * 24 + 24)),
                              prompt_tokens=sum(requests_of(s, h) for h in range(d * 24, d * 24 + 24)) * 2**32))
            for s, sub in enumerate(SUBSCRIPTIONS) for d in range(DAYS)]


def subscription_of(row: UsageRow) -> str:
    return row.subscription_id


def month_requests(s: int) -> int:
    return sum(requests_of(s, h) for h in range(DAYS * 24))


def test_hourly_rows_are_counted_and_dropped_the_rest_kept_and_read_back(sink: TableSinkProcess,
                                                                         store: TableStore) -> None:
    before = sink.stats()
    month_rows = [UsageRow(Granularity.MONTH, MONTH, UsageKey(sub, "product", "gpt-4o", "dep"),
                           Counters(requests=month_requests(s), prompt_tokens=month_requests(s) * 2**32))
                  for s, sub in enumerate(SUBSCRIPTIONS)]
    written = store.upsert([*hourly_rows(), *day_rows(), *month_rows])

    after = sink.stats()
    assert written == len(SUBSCRIPTIONS) * (DAYS * 24 + DAYS + 1)  # every write answered as stored
    assert after["hourly_received_by_table"][store.usage_table] == len(SUBSCRIPTIONS) * DAYS * 24
    assert after["hourly_received"] - before["hourly_received"] == len(SUBSCRIPTIONS) * DAYS * 24
    assert after["kept_by_table"][store.usage_table] == len(SUBSCRIPTIONS) * (DAYS + 1)
    assert after["kept_by_table"][store.index_table] == len(SUBSCRIPTIONS) * (DAYS + 1) + 1  # + the marker

    assert store.read("o'brien", Granularity.HOUR, MONTH, MONTH + timedelta(days=DAYS)) == []  # dropped
    assert store.read("o'brien", Granularity.DAY, MONTH, MONTH + timedelta(days=DAYS)) == day_rows()[DAYS:2 * DAYS]
    assert store.read("sub-c", Granularity.MONTH, MONTH, MONTH + timedelta(days=1)) == [month_rows[2]]
    assert store.index_complete()
    assert sorted(store.read_all(Granularity.MONTH, MONTH, MONTH + timedelta(days=1)), key=subscription_of) == \
        sorted(month_rows, key=subscription_of)
    assert store.read_all(Granularity.DAY, MONTH + timedelta(days=1), MONTH + timedelta(days=2)) == \
        sorted(day_rows()[1::2], key=lambda row: row.subscription_id)
    # the month summed from the index's day partitions, for two of the three subscriptions
    summed = store.month_sums(MONTH, frozenset({"o'brien", "sub-a"}))
    assert summed is not None
    assert {row.subscription_id: (row.counters.requests, row.counters.prompt_tokens) for row in summed} == {
        "o'brien": (month_requests(1), month_requests(1) * 2**32),
        "sub-a": (month_requests(0), month_requests(0) * 2**32)}


def test_a_query_past_one_page_is_continued(store: TableStore) -> None:
    count = 2_345
    # one subscription's months under many keys: two partitions (usage, index), a few transactions
    rows = [UsageRow(Granularity.MONTH, MONTH, UsageKey("sub-many", "product", f"model-{n:05d}", "d"),
                     Counters(requests=n)) for n in range(count)]
    store.upsert(rows)

    index = store.table(store.index_table)
    partition = f"{shard_of(partition_key('sub-many'))}|m|2026-09"
    pages = [entities for _, entities, _ in query_pages(index, "PartitionKey eq @p", {"p": partition},
                                                        ("Model", "Requests"))]
    assert [len(page) for page in pages] == [1000, 1000, 345]
    # key order, all once (a zero counter is not stored)
    assert [entity.get("Requests") or 0 for page in pages for entity in page] == list(range(count))
    read = store.read_all(Granularity.MONTH, MONTH, MONTH + timedelta(days=1))
    assert [row.counters.requests for row in read] == list(range(count))
    # the SDK's own pager follows the same continuation headers
    listed = list(store.table_client(store.usage_table).query_entities(
        "RowKey ge @low and RowKey lt @high", parameters={"low": "m|", "high": "m}"}, select=["RowKey"]))
    assert len(listed) == count


def test_conditional_writes_and_errors_are_the_services(sink: TableSinkProcess, store: TableStore) -> None:
    assert store.get("usage-rollup") == Watermark(None, None)
    first = store.advance("usage-rollup", Watermark(None, None), MONTH)
    with pytest.raises(AlreadyExistsError):  # created twice: the second create is refused
        store.advance("usage-rollup", Watermark(None, None), MONTH)
    second = store.advance("usage-rollup", first, MONTH + timedelta(hours=1))
    assert second.etag != first.etag
    with pytest.raises(ConcurrentUpdateError):  # a stale ETag: someone moved it meanwhile
        store.advance("usage-rollup", first, MONTH + timedelta(hours=2))
    assert store.get("usage-rollup") == second
    assert store.rows_per_hour("usage-rollup") is None  # a 404 read as "never recorded"
    store.record_rows_per_hour("usage-rollup", 1234.5)
    assert store.rows_per_hour("usage-rollup") == 1234.5

    table = store.table(store.state_table)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("nobody", "nothing")
    with pytest.raises(ResourceNotFoundError):  # a conditional replace of an entity that is not there
        table.update_entity({"PartitionKey": "nobody", "RowKey": "nothing"}, mode=UpdateMode.REPLACE,
                            etag=second.etag, match_condition=MatchConditions.IfNotModified)
    service = TableServiceClient.from_connection_string(sink.connection_string)
    with pytest.raises(ResourceExistsError):  # the table exists: creating it again is refused
        service.create_table(store.state_table)
    assert store.state_table in [t.name for t in service.list_tables()]


def test_the_writer_lease_takes_renews_and_loses_by_etag(store: TableStore) -> None:
    first = TableLease(store, "rollup")
    first.acquire()
    first.confirm()
    thief = TableLease(store, "rollup", clock=lambda: datetime.now(UTC) + timedelta(hours=1))  # after expiry
    thief.acquire()
    with pytest.raises(LeaseLostError):
        first.confirm()
    thief.release()
    with pytest.raises(ResourceNotFoundError):
        store.table(store.state_table).get_entity("lease", "rollup")


def test_typed_values_and_filters_round_trip_through_the_sdk(store: TableStore) -> None:
    table = store.table(f"{store.prefix}typed")
    moment = datetime(2026, 9, 1, 12, 30, 15, 250000, tzinfo=UTC)
    guid = uuid.uuid4()
    entity = {"PartitionKey": "p'q", "RowKey": "r 1+2%", "Text": "it's", "Big": EntityProperty(2**40, EdmType.INT64),
              "Small": 7, "Ratio": 0.25, "Flag": True, "When": moment, "Blob": b"\x00\xff", "Id": guid}
    table.create_entity(entity)
    table.create_entity({**entity, "RowKey": "r 2", "Small": 9, "Flag": False})
    got = table.get_entity("p'q", "r 1+2%")
    assert (got["Text"], got["Big"].value, got["Small"], got["Ratio"], got["Flag"], got["When"], got["Blob"],
            got["Id"]) == ("it's", 2**40, 7, 0.25, True, moment, b"\x00\xff", guid)

    def rows(query_filter: str, **parameters: object) -> list[str]:
        return [e["RowKey"] for e in table.query_entities(query_filter, parameters=parameters)]

    assert rows("Text eq @t", t="it's") == ["r 1+2%", "r 2"]
    assert rows("PartitionKey eq @p and RowKey eq @r", p="p'q", r="r 1+2%") == ["r 1+2%"]
    assert rows("Small gt @n and ( Flag eq @f or Big lt @big )", n=8, f=True, big=2**40) == []
    assert rows("Small gt @n and ( Flag eq @f or Big le @big )", n=8, f=True, big=2**40) == ["r 2"]
    assert rows("When ge @w and not ( Small eq 7 )", w=moment) == ["r 2"]
    assert rows("Id eq @g and Ratio lt 0.5", g=guid) == ["r 1+2%", "r 2"]
    assert rows("Missing eq 'x' or RowKey gt 'r 1+2%'") == ["r 2"]
    with pytest.raises(ResourceExistsError):
        table.create_entity(entity)
    with pytest.raises(HttpResponseError) as refused:
        rows("Small gt")
    assert refused.value.status_code == 400


def test_sdk_transactions_are_atomic(store: TableStore) -> None:
    table = store.table(f"{store.prefix}batch")
    table.submit_transaction([("create", {"PartitionKey": "p", "RowKey": "a", "N": 1}),
                              ("upsert", {"PartitionKey": "p", "RowKey": "b", "N": 2}, {"mode": UpdateMode.REPLACE})])
    with pytest.raises(TableTransactionError):  # the second operation is refused: the first is not applied
        table.submit_transaction([("upsert", {"PartitionKey": "p", "RowKey": "c", "N": 3}),
                                  ("create", {"PartitionKey": "p", "RowKey": "a", "N": 4})])
    assert {e["RowKey"]: e["N"] for e in table.list_entities()} == {"a": 1, "b": 2}
