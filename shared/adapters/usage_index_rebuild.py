"""Rebuilding the period index (:mod:`shared.adapters.usage_index`) from the usage table's day and
month rows: ``chargeback index rebuild``.  A full rebuild also marks the index complete, so reads
use it from then on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from shared.adapters.table_query import query
from shared.adapters.tables import TableStore
from shared.adapters.usage_index import (
    INDEXED,
    REBUILD_BATCH,
    complete_marker,
    index_entity,
    index_reads,
)
from shared.core.keys import GRANULARITY_CODE, SEPARATOR, period_range, prefix_range
from shared.core.months import month_start, next_month
from shared.core.usage import Granularity


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
        low, high = prefix_range(f"{code}{SEPARATOR}")
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
    remove them).  Every month's report generation changes around it (``report_generations``): a
    report kept before is rendered again, and none is kept while it runs or after it failed."""
    with store.changing_every_month():
        return _rebuild(store, start, end)


def _rebuild(store: TableStore, start: datetime | None, end: datetime | None) -> RebuildResult:
    if start is None or end is None:
        written = sum(_write(store, granularity, None, None)[0] for granularity in INDEXED)
        store.replace_entities(store.index_table, [complete_marker()])  # every period is in: reads use it
        return RebuildResult(written, 0)
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
    found = store.index_entities(index_reads(granularity, start, end), ("PartitionKey", "RowKey"))
    stale = [entity for entity in found if entity["RowKey"] not in keys]
    for entity in stale:
        store.call(partial(index.delete_entity, entity["PartitionKey"], entity["RowKey"]))
    return len(stale)
