"""Usage rows read one Table Storage response page at a time, resumable from a continuation.

The same key-range queries as :class:`shared.adapters.tables.TableStore` (one partition's RowKey
range, or the RowKey range across partitions), sent through :func:`shared.adapters.table_query.query_pages`:
the usage report holds one page of entities at a time and its page tokens carry the service's
continuation, so a report never reads a range twice to go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import shared.core.keys as keys
from shared.adapters.table_query import query_pages
from shared.adapters.tables import USAGE_PROPERTIES, usage_row
from shared.adapters.usage_index import index_filter, single_period
from shared.core.keys import partition_key, period_range
from shared.core.paging import Continuation, StoragePage
from shared.core.usage import Granularity

if TYPE_CHECKING:
    from shared.adapters.tables import TableStore

# The name a row of ``subscription`` is stored under (a shortened form for a name Table Storage
# cannot hold as is, where shared.core.keys defines one): a one-partition read keeps only those
# rows, as TableStore.read does, so a key shared by two names never mixes their rows.
_stored_name: Callable[[str], str] = getattr(keys, "storable_name", lambda name: name)


class TableUsagePages:
    """Implements the report's ``UsagePages`` over a :class:`TableStore`'s usage table."""

    def __init__(self, store: TableStore) -> None:
        self._store = store

    def pages(self, subscription: str | None, granularity: Granularity, start: datetime, end: datetime,
              resume: Continuation | None = None) -> Iterator[StoragePage]:
        low, high = period_range(granularity, start, end)
        parameters: dict[str, str]
        table_name = self._store.usage_table
        if subscription is None and single_period(granularity, start, end) and self._store.index_complete():
            # one index partition, in the usage table's order (usage_index): no scan of the history
            table_name = self._store.index_table
            query_filter, parameters = index_filter(granularity, start, end)
        elif subscription is None:
            query_filter, parameters = "RowKey ge @low and RowKey lt @high", {"low": low, "high": high}
        else:
            query_filter = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
            parameters = {"pk": partition_key(subscription), "low": low, "high": high}
        wanted = None if subscription is None else _stored_name(subscription)
        table = self._store.table(table_name)
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
