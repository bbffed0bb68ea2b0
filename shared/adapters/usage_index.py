"""The period index: day and month usage rows stored a second time, keyed by period.

The usage table is keyed by subscription, so a read of *every* subscription's month is a RowKey
range over all partitions: the service walks every partition of the whole history to find one
month.  The index table (``<prefix>usageindex``) holds the same entities keyed the other way:
PartitionKey = the period (``m|2026-11``, ``d|2026-11-30``, as in the usage RowKey), RowKey = the
usage row's PartitionKey and RowKey joined by a space (below every character of an encoded key, so
one period's rows come in the usage table's order: subscription, then the rest of the key).  An
all-subscription day or month read is then a PartitionKey range (one partition per period), whose
cost follows the rows returned and not the years of history beside them.  The usage report's paged
reader uses the index for one period (its order is the usage table's); longer ranges are scanned.

Hour rows are not indexed: they are 24x the day rows, so indexing them would double the largest
write of every run, and an all-subscription hour read is bounded by the report's range anyway.

The index is written in the same store write as the usage rows (:meth:`TableStore.upsert`: one
partition per transaction, each an idempotent replace), so a rerun converges on both tables alike.
``chargeback index rebuild`` writes it again from the usage table (after an upgrade, or to repair
it) and removes index entities whose usage row is gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from shared.adapters.table_query import query
from shared.core.keys import GRANULARITY_CODE, SEPARATOR, period_range
from shared.core.months import month_start, next_month
from shared.core.usage import Granularity

if TYPE_CHECKING:
    from shared.adapters.tables import TableStore

INDEXED = (Granularity.DAY, Granularity.MONTH)
INDEXED_VALUES = frozenset(granularity.value for granularity in INDEXED)
JOIN = " "  # sorts below every character an encoded key holds (shared.core.keys)
REBUILD_BATCH = 5_000  # entities written at a time by a rebuild (memory stays flat at any history)


def index_table_name(prefix: str) -> str:
    return f"{prefix}usageindex"


def index_entity(entity: dict[str, Any]) -> dict[str, Any]:
    """The index copy of a usage entity (same properties, keys turned around)."""
    row_key: str = entity["RowKey"]
    period = SEPARATOR.join(row_key.split(SEPARATOR, 2)[:2])  # ``d|2026-11-30`` (the code holds one separator)
    return {**entity, "PartitionKey": period, "RowKey": f"{entity['PartitionKey']}{JOIN}{row_key}"}


def single_period(granularity: Granularity, start: datetime, end: datetime) -> bool:
    """Whether ``[start, end)`` holds at most one period start: one index partition, read in the
    usage table's own order (a longer range comes period by period)."""
    first, last = granularity.ceil(start), granularity.ceil(end)
    following = next_month(first) if granularity is Granularity.MONTH else first + timedelta(days=1)
    return granularity in INDEXED and last <= following


def index_filter(granularity: Granularity, start: datetime, end: datetime) -> tuple[str, dict[str, str]]:
    """The index read of every row whose period starts in ``[start, end)``: a PartitionKey range."""
    low, high = period_range(granularity, start, end)
    return "PartitionKey ge @low and PartitionKey lt @high", {"low": low, "high": high}


@dataclass(frozen=True)
class RebuildResult:
    written: int
    removed: int

    def summary(self) -> str:
        return f"usage index rebuilt: {self.written:,} entities written, {self.removed:,} stale entities removed"


def _usage_filter(granularity: Granularity, start: datetime | None,
                  end: datetime | None) -> tuple[str, dict[str, str]]:
    if start is not None and end is not None:
        low, high = period_range(granularity, start, end)
    else:  # every period of this granularity: RowKeys ``d|...`` sort between ``d|`` and ``d}``
        code = GRANULARITY_CODE[granularity]
        low, high = f"{code}{SEPARATOR}", f"{code}{chr(ord(SEPARATOR) + 1)}"
    return "RowKey ge @low and RowKey lt @high", {"low": low, "high": high}


def _batches(entities: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for entity in entities:
        batch.append(entity)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _months(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` cut at month starts."""
    cursor = start
    while cursor < end:
        following = min(next_month(month_start(cursor)), end)
        yield cursor, following
        cursor = following


def rebuild(store: TableStore, start: datetime | None = None, end: datetime | None = None) -> RebuildResult:
    """Write the index again from the usage table's day and month rows.

    Over a range (periods starting in ``[start, end)``), a month at a time: the month's usage rows
    are written to the index and the month's index entities without a usage row are removed (memory:
    one month's keys).  Without a range, every day and month row is written again, streamed in
    batches; stale entities are then left (the rollup never deletes usage rows; give a range to
    remove them)."""
    if start is None or end is None:
        return RebuildResult(sum(_write(store, granularity, None, None)[0] for granularity in INDEXED), 0)
    written = removed = 0
    for low, high in _months(start, end):
        for granularity in INDEXED:
            count, keys = _write(store, granularity, low, high)
            written += count
            removed += _remove_stale(store, granularity, low, high, keys)
    return RebuildResult(written, removed)


def _write(store: TableStore, granularity: Granularity, start: datetime | None,
           end: datetime | None) -> tuple[int, set[str]]:
    """Index entities written from the usage rows of the range, and their index RowKeys."""
    usage = store.table(store.usage_table)
    query_filter, parameters = _usage_filter(granularity, start, end)
    written, keys = 0, set[str]()
    entities = store.call(lambda: query(usage, query_filter, parameters))
    for batch in _batches(entities, REBUILD_BATCH):
        indexed = [index_entity(_as_written(entity)) for entity in batch]
        written += store.replace_entities(store.index_table, indexed)
        if start is not None:
            keys.update(entity["RowKey"] for entity in indexed)
    return written, keys


def _as_written(entity: dict[str, Any]) -> dict[str, Any]:
    """A read-back usage entity typed as the rollup writes it: every counter Int64 (a query gives
    plain ints, which would be sent as Int32)."""
    from azure.data.tables import EdmType, EntityProperty

    return {name: EntityProperty(value, EdmType.INT64) if isinstance(value, int) and not isinstance(value, bool)
            else value for name, value in entity.items()}


def _remove_stale(store: TableStore, granularity: Granularity, start: datetime, end: datetime, keys: set[str]) -> int:
    index = store.table(store.index_table)
    query_filter, parameters = index_filter(granularity, start, end)
    found = store.call(lambda: list(query(index, query_filter, parameters, ("PartitionKey", "RowKey"))))
    stale = [entity for entity in found if entity["RowKey"] not in keys]
    for entity in stale:
        store.call(partial(index.delete_entity, entity["PartitionKey"], entity["RowKey"]))
    return len(stale)
