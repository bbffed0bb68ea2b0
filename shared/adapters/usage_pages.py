"""Usage rows read one Table Storage response page at a time, resumable from a continuation.

The same key-range queries as :class:`shared.adapters.tables.TableStore` (one partition's RowKey
range, or the RowKey range across partitions), sent through :func:`shared.adapters.table_query.query_pages`:
the usage report holds one page of entities at a time and its page tokens carry the service's
continuation, so a report never reads a range twice to go on.

An all-subscription read of one period goes to the period index, whose period is spread over
shards (:mod:`shared.adapters.usage_index`): each shard's partition comes in the usage table's order,
and the shards are merged by RowKey (a usage PartitionKey and RowKey: unique, and the usage table's
order).  Its pages are ``MERGED_PAGE_ROWS`` merged rows, and their continuation is the RowKey of the
last row before the page: a resumed read asks each shard for the RowKeys after it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

import shared.core.keys as keys
from shared.adapters.table_query import query_pages
from shared.adapters.tables import USAGE_PROPERTIES, usage_row
from shared.adapters.usage_index import READS_IN_FLIGHT, Read, index_reads, single_period
from shared.core.keys import partition_key, period_range
from shared.core.paging import Continuation, StoragePage
from shared.core.usage import Granularity
from shared.errors import InvalidRequestError

if TYPE_CHECKING:
    from shared.adapters.tables import TableStore

# The name a row of ``subscription`` is stored under (a shortened form for a name Table Storage
# cannot hold as is, where shared.core.keys defines one): a one-partition read keeps only those
# rows, as TableStore.read does, so a key shared by two names never mixes their rows.
_stored_name: Callable[[str], str] = getattr(keys, "storable_name", lambda name: name)

MERGED = "~merged"  # continuation head of a merged index read (never a PartitionKey: those start s..)
MERGED_PAGE_ROWS = 1_000  # as the service's own page


class TableUsagePages:
    """Implements the report's ``UsagePages`` over a :class:`TableStore`'s usage table."""

    def __init__(self, store: TableStore) -> None:
        self._store = store

    def pages(self, subscription: str | None, granularity: Granularity, start: datetime, end: datetime,
              resume: Continuation | None = None) -> Iterator[StoragePage]:
        if subscription is None and single_period(granularity, start, end) and self._store.index_complete():
            # the period's index partitions, merged into the usage table's order: no scan of the history
            return self._merged(index_reads(granularity, start, end), resume)
        return self._pages(subscription, granularity, start, end, resume)

    def _pages(self, subscription: str | None, granularity: Granularity, start: datetime, end: datetime,
               resume: Continuation | None) -> Iterator[StoragePage]:
        low, high = period_range(granularity, start, end)
        parameters: dict[str, str]
        if subscription is None:
            query_filter, parameters = "RowKey ge @low and RowKey lt @high", {"low": low, "high": high}
        else:
            query_filter = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
            parameters = {"pk": partition_key(subscription), "low": low, "high": high}
        wanted = None if subscription is None else _stored_name(subscription)
        table = self._store.table(self._store.usage_table)
        responses = query_pages(table, query_filter, parameters, USAGE_PROPERTIES, resume)
        while True:
            # each response is fetched inside call(): SDK errors become the StorageError family
            fetched = self._store.call(lambda: next(responses, None))
            if fetched is None:
                return
            started, entities, following = fetched
            rows = [usage_row(entity) for entity in entities]
            if wanted is not None:
                rows = [row for row in rows if row.key.subscription_id == wanted]
            yield StoragePage(started, rows, following)

    def _merged(self, reads: list[Read], resume: Continuation | None) -> Iterator[StoragePage]:
        after = _merged_position(resume)
        if after is not None:
            reads = [(f"{query_filter} and RowKey gt @after", {**parameters, "after": after})
                     for query_filter, parameters in reads]
        table = self._store.table(self._store.index_table)
        shards = [query_pages(table, *read, ("RowKey", *USAGE_PROPERTIES)) for read in reads]
        # every shard's first page at once (a read's first page waits on all of them), then each
        # shard's next page only when the merge has used up the one before
        with ThreadPoolExecutor(max_workers=READS_IN_FLIGHT) as pool:
            firsts = list(pool.map(self._next_entities, shards))
        streams = [chain(first or [], self._rest(shard)) for first, shard in zip(firsts, shards, strict=True)]
        merged = heapq.merge(*streams, key=lambda entity: str(entity["RowKey"]))
        started = resume
        page: list[dict[str, Any]] = []
        for entity in merged:
            if len(page) == MERGED_PAGE_ROWS:
                following: Continuation = (MERGED, str(page[-1]["RowKey"]))
                yield StoragePage(started, [usage_row(row) for row in page], following)
                started, page = following, []
            page.append(entity)
        yield StoragePage(started, [usage_row(row) for row in page], None)

    def _next_entities(self, shard: Iterator[tuple[Any, list[dict[str, Any]], Any]]) -> list[dict[str, Any]] | None:
        """The shard's next response page (possibly empty: the service may answer a range read with an
        empty page and a continuation); ``None`` past its last."""
        fetched = self._store.call(lambda: next(shard, None))
        return None if fetched is None else fetched[1]

    def _rest(self, shard: Iterator[tuple[Any, list[dict[str, Any]], Any]]) -> Iterator[dict[str, Any]]:
        while (entities := self._next_entities(shard)) is not None:
            yield from entities


def _merged_position(resume: Continuation | None) -> str | None:
    """The RowKey a merged read resumes after; a continuation of another read cannot resume one."""
    if resume is None:
        return None
    head, after = resume
    if head != MERGED or after is None:
        raise InvalidRequestError("next", "this page token was made by an older version of the report: ask for "
                                          "the first page again")
    return after
