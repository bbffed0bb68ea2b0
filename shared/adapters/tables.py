"""Azure Table Storage: usage rows and run state (watermarks).

Usage rows: PartitionKey = subscription, RowKey = ``granularity|period|model|deployment|product``,
so one subscription's period range is a single-partition RowKey range query.  Writes go in
transactions of at most 100 entities of one partition (the service limit), usage rows written and
read through ``table_batch`` / ``table_query`` (the same REST calls as the SDK, a fraction of its
Python).  Every filter takes its values as parameters (``@name``, bound as literals); no value is
ever formatted into filter text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from itertools import groupby
from typing import Any, TypeVar

from shared.adapters.entity_values import plain
from shared.adapters.table_batch import submit_replace
from shared.adapters.table_query import query
from shared.core.keys import partition_key, period_range, row_key
from shared.core.usage import COUNTER_NAMES, Granularity, UsageKey, UsageRow, counters_from
from shared.errors import (
    AlreadyExistsError,
    ConcurrentUpdateError,
    NotFoundError,
    StorageError,
    StorageUnavailableError,
    TransactionRejectedError,
)
from shared.ports import Watermark

T = TypeVar("T")
MAX_TRANSACTION = 100
TRANSACTIONS_IN_FLIGHT = 4
_PROPERTY = {name: "".join(part.title() for part in name.split("_")) for name in COUNTER_NAMES}
# What a usage row is read back from (the keys and the service's Timestamp are not needed).
USAGE_PROPERTIES = ("SubscriptionId", "ProductId", "Model", "Deployment", "Granularity", "PeriodStart",
                    *_PROPERTY.values())


def usage_entity(row: UsageRow) -> dict[str, Any]:
    from azure.data.tables import EdmType, EntityProperty

    entity: dict[str, Any] = {
        "PartitionKey": partition_key(row.key.subscription_id),
        "RowKey": row_key(row.granularity, row.period_start, row.key),
        "SubscriptionId": row.key.subscription_id,
        "ProductId": row.key.product_id,
        "Model": row.key.model,
        "Deployment": row.key.deployment,
        "Granularity": row.granularity.value,
        "PeriodStart": row.period_start,
    }
    for name, value in row.counters.as_dict().items():
        # Int64 always: a month of tokens passes 2**31 and Int32 would be refused.
        entity[_PROPERTY[name]] = EntityProperty(value, EdmType.INT64)
    return entity


def usage_row(entity: dict[str, Any]) -> UsageRow:
    values = {name: plain(entity.get(prop)) for name, prop in _PROPERTY.items()}
    start = entity["PeriodStart"]
    return UsageRow(
        Granularity(entity["Granularity"]),
        start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC),
        # Names were normalized when the row was built; read them back exactly as stored.
        UsageKey(entity.get("SubscriptionId", ""), entity.get("ProductId", ""), entity.get("Model", ""),
                 entity.get("Deployment", "")),
        counters_from(values),
    )


class TableStore:
    """Implements ``UsageRepository`` and ``WatermarkRepository`` over one storage account."""

    def __init__(self, service: Any, prefix: str, describe: str) -> None:
        self._service = service
        self.usage_table = f"{prefix}usage"
        self.state_table = f"{prefix}state"
        self._describe = describe
        self._ready: set[str] = set()

    def table(self, name: str) -> Any:
        """The client of table ``name``, created on first use (per store instance)."""
        if name not in self._ready:
            self.call(lambda: self._service.create_table_if_not_exists(name))
            self._ready.add(name)
        return self._service.get_table_client(name)

    def call(self, operation: Callable[[], T]) -> T:
        """Run one SDK operation, translating its exceptions into the StorageError family."""
        from azure.core.exceptions import (
            AzureError,
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
            ServiceRequestError,
        )
        from azure.data.tables import TableTransactionError

        try:
            return operation()
        except ResourceExistsError as exc:
            raise AlreadyExistsError(f"a concurrent run created the same record in {self._describe}") from exc
        except ResourceModifiedError as exc:
            raise ConcurrentUpdateError(f"a concurrent run changed the same record in {self._describe}") from exc
        except ResourceNotFoundError as exc:
            raise NotFoundError(f"no such record in {self._describe}: {_first_line(exc)}") from exc
        except ServiceRequestError as exc:
            raise StorageUnavailableError(f"Table Storage is unreachable at {self._describe}: {exc}") from exc
        except TableTransactionError as exc:
            raise TransactionRejectedError(
                f"a transaction was rejected by {self._describe}: {_first_line(exc)}") from exc
        except AzureError as exc:
            raise StorageError(f"Table Storage operation failed on {self._describe}: {_first_line(exc)}") from exc

    # -- usage ------------------------------------------------------------------------------------
    def upsert(self, rows: Iterable[UsageRow]) -> int:
        return self.replace_entities(self.usage_table, (usage_entity(row) for row in rows))

    def replace_entities(self, table_name: str, entities: Iterable[dict[str, Any]]) -> int:
        """Upsert (replace) entities in transactions of at most 100 of one partition (the service
        limit), written by :mod:`shared.adapters.table_batch` (the SDK's transaction code costs
        five times what Azurite does to store them).

        Transactions are independent and each is an idempotent replace: after a failure the
        others stay written and a rerun converges.  Several are in flight at once, so building
        one overlaps the service storing another.
        """
        table = self.table(table_name)
        ordered = sorted(entities, key=lambda e: (e["PartitionKey"], e["RowKey"]))
        transactions = [chunk for _, partition in groupby(ordered, key=lambda e: e["PartitionKey"])
                        for chunk in _chunks(list(partition), MAX_TRANSACTION)]
        if len(transactions) <= 1:
            return sum(self._submit(table, chunk) for chunk in transactions)
        with ThreadPoolExecutor(max_workers=TRANSACTIONS_IN_FLIGHT) as pool:
            outcomes = list(pool.map(lambda chunk: self._try(partial(self._submit, table, chunk)), transactions))
        failures = [outcome for outcome in outcomes if isinstance(outcome, StorageError)]
        if failures:
            raise failures[0]
        return len(ordered)

    def _submit(self, table: Any, chunk: list[dict[str, Any]]) -> int:
        try:
            return self.call(partial(submit_replace, table, chunk))
        except TransactionRejectedError as exc:  # name the store, as call() does
            raise TransactionRejectedError(f"a transaction was rejected by {self._describe}: {exc}") from exc

    def _try(self, operation: Callable[[], T]) -> T | StorageError:
        try:
            return operation()
        except StorageError as exc:
            return exc

    def read(self, subscription_id: str, granularity: Granularity, start: datetime,
             end: datetime) -> list[UsageRow]:
        low, high = period_range(granularity, start, end)
        return self._query(self.usage_table, "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                           {"pk": partition_key(subscription_id), "low": low, "high": high})

    def read_all(self, granularity: Granularity, start: datetime, end: datetime) -> list[UsageRow]:
        low, high = period_range(granularity, start, end)
        return self._query(self.usage_table, "RowKey ge @low and RowKey lt @high", {"low": low, "high": high})

    def _query(self, table_name: str, query_filter: str, parameters: dict[str, Any]) -> list[UsageRow]:
        table = self.table(table_name)
        entities = self.call(lambda: list(query(table, query_filter, parameters, USAGE_PROPERTIES)))
        return [usage_row(entity) for entity in entities]

    # -- watermarks -------------------------------------------------------------------------------
    def get(self, name: str) -> Watermark:
        table = self.table(self.state_table)
        try:
            entity = self.call(lambda: table.get_entity("watermark", name))
        except NotFoundError:
            return Watermark(None, None)
        value = entity["Value"]
        return Watermark(value.astimezone(UTC), entity.metadata["etag"])

    def advance(self, name: str, previous: Watermark, value: datetime) -> Watermark:
        """Store ``value`` only if nobody changed the watermark since ``previous`` was read."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        table = self.table(self.state_table)
        entity = {"PartitionKey": "watermark", "RowKey": name, "Value": value.astimezone(UTC)}
        if previous.etag is None:
            metadata = self.call(lambda: table.create_entity(entity))
        else:
            metadata = self.call(lambda: table.update_entity(entity, mode=UpdateMode.REPLACE, etag=previous.etag,
                                                              match_condition=MatchConditions.IfNotModified))
        return Watermark(value.astimezone(UTC), str(metadata["etag"]))

    def describe(self) -> str:
        return self._describe

    def table_client(self, name: str) -> Any:
        """The raw client of an existing table (tests and tooling read whole tables with it)."""
        return self._service.get_table_client(name)

    def table_names(self) -> list[str]:
        return self.call(lambda: [t.name for t in self._service.list_tables()])


def _first_line(exc: Exception) -> str:
    """The SDK's summary line, without the request/response dump that follows it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
