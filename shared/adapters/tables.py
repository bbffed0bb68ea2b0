"""Azure Table Storage: usage rows and run state (watermarks).

Usage rows: PartitionKey = subscription, RowKey = ``granularity|period|model|deployment|product``
(and ``|service`` when the row names an APIM service, stored as ``ApimService``; a row without
one, older rows included, reads back with service ``""``; ``|service|priority`` for the requests served
at the priority tier, stored as ``ServiceTier``, a row without it reading back as tier ``""``), so one
subscription's period range, on every gateway and tier, is a single-partition RowKey range query.
Names are stored in their storable form (:mod:`shared.core.keys`: a name too long or not valid text is
shortened, marked ``NameTruncated`` with ``FullNameHash``), and a read through a key keeps only rows whose stored
subscription is the one asked for.

Writes go in transactions of one partition, at most 100 entities and 4 MiB (the service limits),
written and read through ``table_batch`` / ``table_query`` (the same REST calls as the SDK, a
fraction of its Python).  An entity that breaks a limit (``table_limits``) or that the service
refuses is set aside in the quarantine table (``quarantine``) with the reason, and the rest is
written: one bad row never stops a run.  Every filter takes its values as parameters (``@name``,
bound as literals); no value is ever formatted into filter text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import groupby, pairwise
from typing import Any, TypeVar

from shared.adapters.entity_values import plain, stored_names
from shared.adapters.index_month_sums import MonthTotals
from shared.adapters.quarantine import Quarantined, QuarantineTable
from shared.adapters.report_generations import EPOCH, changing, generation_key, months_written, read_generation
from shared.adapters.table_batch import MAX_OPERATIONS, MAX_TRANSACTION_BYTES, Operation, operation, submit_operations
from shared.adapters.table_limits import entity_problem
from shared.adapters.table_query import query, query_pages
from shared.adapters.table_rest import endpoints
from shared.adapters.usage_index import (
    COMPLETE,
    INDEXED,
    INDEXED_VALUES,
    META_PARTITION,
    READS_IN_FLIGHT,
    Read,
    complete_marker,
    index_entity,
    index_reads,
    index_table_name,
    period_of,
    touched_entity,
    touched_reads,
)
from shared.core.keys import (
    partition_key,
    period_range,
    row_key,
    shortened_digest,
    storable_key,
    storable_name,
)
from shared.core.months import next_month
from shared.core.usage import COUNTER_NAMES, Granularity, UsageKey, UsageRow, counters_from
from shared.errors import (
    AlreadyExistsError,
    ConcurrentUpdateError,
    NotFoundError,
    StorageError,
    StorageUnavailableError,
    TransactionRejectedError,
)
from shared.ports import MonthParts, QuarantineRetry, Watermark

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_TRANSACTION = MAX_OPERATIONS
TRANSACTIONS_IN_FLIGHT = 4
# A transaction whose connection broke is sent again this many times in all, waiting 0.5 s, 1 s, 2 s.
TRANSACTION_ATTEMPTS = 4
RETRY_BACKOFF_SECONDS = 0.5
_PROPERTY = {name: "".join(part.title() for part in name.split("_")) for name in COUNTER_NAMES}
# What a usage row is read back from (the keys and the service's Timestamp are not needed).
USAGE_PROPERTIES = ("SubscriptionId", "ProductId", "Model", "Deployment", "ApimService", "ServiceTier",
                    "Granularity", "PeriodStart", *_PROPERTY.values())


def usage_entity(row: UsageRow) -> dict[str, Any]:
    from azure.data.tables import EdmType, EntityProperty

    key = storable_key(row.key)
    entity: dict[str, Any] = {
        "PartitionKey": partition_key(key.subscription_id),
        "RowKey": row_key(row.granularity, row.period_start, key),
        "SubscriptionId": key.subscription_id,
        "ProductId": key.product_id,
        "Model": key.model,
        "Deployment": key.deployment,
        "Granularity": row.granularity.value,
        "PeriodStart": row.period_start,
    }
    if key.apim_service:  # absent otherwise: such a row is stored as it was before services were kept
        entity["ApimService"] = key.apim_service
    if key.service_tier:  # likewise: a default-tier row is stored as before tiers were kept
        entity["ServiceTier"] = key.service_tier
    shortened = {name: digest for name in ("SubscriptionId", "ProductId", "Model", "Deployment", "ApimService")
                 if (digest := shortened_digest(entity.get(name, "")))}
    if shortened:  # the full names could not be stored: their hashes say which names these were
        entity["NameTruncated"] = True
        entity["FullNameHash"] = ",".join(f"{name}:{digest}" for name, digest in shortened.items())
    for name, value in row.counters.as_dict().items():
        # A zero counter is not stored (read back as 0, as a row from before the counter existed): most
        # of the 15 are zero on most rows, and every stored one is a typed property the service
        # parses, keeps and bills.  Int64 always: a month of tokens passes 2**31, refused as Int32.
        if value:
            entity[_PROPERTY[name]] = EntityProperty(value, EdmType.INT64)
    return entity


def usage_row(entity: dict[str, Any]) -> UsageRow:
    values = {name: plain(entity.get(prop)) for name, prop in _PROPERTY.items()}
    start = entity["PeriodStart"]
    return UsageRow(
        Granularity(entity["Granularity"]),
        start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC),
        UsageKey(*stored_names(entity)),
        counters_from(values),
    )


class TableStore:
    """Implements ``UsageRepository`` and ``WatermarkRepository`` over one storage account."""

    def __init__(self, service: Any, prefix: str, describe: str) -> None:
        self._service = service
        self.prefix = prefix  # of every table of this installation (feature tables too)
        self.usage_table = f"{prefix}usage"
        self.state_table = f"{prefix}state"
        self.quarantine_table = f"{prefix}quarantine"
        self.index_table = index_table_name(prefix)
        self._describe = describe
        self._ready: set[str] = set()
        self._index_known_complete = False
        self._quarantine: QuarantineTable | None = None

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
        """Usage rows, and the day and month ones again in the period index (``usage_index``); their
        months' report generations change around the write (``report_generations``)."""
        entities = [usage_entity(row) for row in rows]
        if entities and not self._index_known_complete:
            self._mark_index_complete_if_fresh()
        with self._generations_changing(entities, key="RowKey"):
            written = self._replace(self.usage_table, entities)
            indexed = [index_entity(entity) for entity in entities if entity["Granularity"] in INDEXED_VALUES]
            if indexed:
                self._replace(self.index_table, indexed)
        return written

    def replace_entities(self, table_name: str, entities: Iterable[dict[str, Any]]) -> int:
        """:meth:`_replace`; a write of usage or index rows changes their months' report generations."""
        key = {self.usage_table: "RowKey", self.index_table: "PartitionKey"}.get(table_name)
        if key is None:
            return self._replace(table_name, entities)
        listed = list(entities)
        with self._generations_changing(listed, key=key):
            return self._replace(table_name, listed)

    def _generations_changing(self, entities: list[dict[str, Any]], *, key: str) -> AbstractContextManager[None]:
        months = months_written(entities, key=key)
        return changing([generation_key(month) for month in months],
                        lambda marks: self._replace(self.state_table, marks))

    def changing_every_month(self) -> AbstractContextManager[None]:
        """The report generation of every month changes around the block (an index rebuild)."""
        return changing([EPOCH], lambda marks: self._replace(self.state_table, marks))

    def report_generation(self, month: str) -> str | None:
        """The settled report generation of ``month`` (``2026-11``); ``None`` while it changes."""
        return read_generation(self.table(self.state_table), self.call, month)

    def _replace(self, table_name: str, entities: Iterable[dict[str, Any]]) -> int:
        """Upsert (replace) entities in transactions of one partition, at most 100 entities and
        4 MiB each (the service limits), written by :mod:`shared.adapters.table_batch` (the SDK's
        transaction code costs five times what Azurite does to store them).  Returns how many
        were written; the rest were quarantined (see the module text).

        Transactions are independent and each is an idempotent replace: after a failure the
        others stay written and a rerun converges.  Several are in flight at once, so building
        one overlaps the service storing another.  A refused transaction is split until the
        refused entity stands alone, and only that one is quarantined.
        """
        table = self.table(table_name)
        _, table_url, _ = endpoints(table)
        ordered = sorted(entities, key=lambda e: (e["PartitionKey"], e["RowKey"]))
        _refuse_duplicates(ordered)
        sendable: list[Operation] = []
        for entity in ordered:
            problem = entity_problem(entity)
            if problem is None:
                sendable.append(operation(table_url, entity))
            else:
                self.quarantine.put(table_name, entity, f"not sent: {problem}")
        transactions = [chunk for _, partition in groupby(sendable, key=lambda op: op.entity["PartitionKey"])
                        for chunk in _transactions(list(partition))]
        if transactions:
            self.quarantine.kept_keys()  # loaded once, here, not by the first of several threads
        if len(transactions) <= 1:
            return sum(self._write(table, table_name, chunk) for chunk in transactions)
        with ThreadPoolExecutor(max_workers=TRANSACTIONS_IN_FLIGHT) as pool:
            outcomes = list(pool.map(lambda chunk: self._try(partial(self._write, table, table_name, chunk)),
                                     transactions))
        failures = [outcome for outcome in outcomes if isinstance(outcome, StorageError)]
        if failures:
            raise failures[0]
        return sum(outcome for outcome in outcomes if isinstance(outcome, int))

    def _write(self, table: Any, table_name: str, chunk: list[Operation]) -> int:
        """One transaction; when the service refuses it, its halves, down to the refused entity
        (quarantined).  Returns how many entities were written."""
        try:
            written = self._submit(table, chunk)
        except TransactionRejectedError as exc:
            if len(chunk) == 1:
                self.quarantine.put(table_name, chunk[0].entity, str(exc))
                return 0
            middle = len(chunk) // 2
            return self._write(table, table_name, chunk[:middle]) + self._write(table, table_name, chunk[middle:])
        for op in chunk:  # a newer version is stored: the kept copy must never be sent over it
            if self.quarantine.kept_keys():
                self.quarantine.clear(table_name, op.entity["PartitionKey"], op.entity["RowKey"])
        return written

    def _submit(self, table: Any, chunk: list[Operation]) -> int:
        try:
            return self.call(partial(_sent_until_answered, partial(submit_operations, table, chunk)))
        except TransactionRejectedError as exc:  # name the store, as call() does
            if str(exc).startswith("a transaction was rejected by"):
                raise
            raise TransactionRejectedError(f"a transaction was rejected by {self._describe}: {exc}") from exc

    def _try(self, operation: Callable[[], T]) -> T | StorageError:
        try:
            return operation()
        except StorageError as exc:
            return exc

    # -- quarantine -------------------------------------------------------------------------------
    @property
    def quarantine(self) -> QuarantineTable:
        if self._quarantine is None:
            self._quarantine = QuarantineTable(self, self.quarantine_table)
        return self._quarantine

    def quarantined_count(self) -> int:
        """Entities kept aside because Table Storage refused them (``/api/health`` shows it)."""
        return self.quarantine.count()

    def retry_quarantined(self) -> QuarantineRetry:
        """Send every kept entity again; the ones accepted now leave the quarantine."""
        entries: list[Quarantined] = self.quarantine.entries()
        written = 0
        usage_rows: list[UsageRow] = []
        for table_name, group in groupby(sorted(entries, key=lambda e: e.table_name), key=lambda e: e.table_name):
            # listed only (too large to have been kept): never sent again
            sendable = [entry for entry in group if entry.entity is not None]
            # in transactions as any write; a refused one is kept again (attempts + 1), the rest cleared
            written += self.replace_entities(table_name, [entry.entity for entry in sendable if entry.entity])
            kept = self.quarantine.kept_keys()
            for entry in sendable:
                if entry.entity and table_name == self.usage_table and (table_name, entry.row_key) not in kept:
                    usage_rows.append(usage_row({name: _kept_value(value) for name, value in entry.entity.items()}))
        return QuarantineRetry(len(entries), written, len(entries) - written, tuple(usage_rows))

    def read(self, subscription_id: str, granularity: Granularity, start: datetime,
             end: datetime) -> list[UsageRow]:
        low, high = period_range(granularity, start, end)
        rows = self._query(self.usage_table, "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                           {"pk": partition_key(subscription_id), "low": low, "high": high})
        # The key answers for one name only; the stored name proves it (never another's rows).
        wanted = storable_name(subscription_id)
        return [row for row in rows if row.key.subscription_id == wanted]

    def read_all(self, granularity: Granularity, start: datetime, end: datetime) -> list[UsageRow]:
        if granularity in INDEXED and self.index_complete():  # a range per shard (usage_index)
            entities = self.index_entities(index_reads(granularity, start, end),
                                            ("PartitionKey", "RowKey", *USAGE_PROPERTIES))
            # period by period, each in the usage table's order: as one partition per period read
            entities.sort(key=lambda entity: (period_of(entity["PartitionKey"]), entity["RowKey"]))
            return [usage_row(entity) for entity in entities]
        low, high = period_range(granularity, start, end)
        return self._query(self.usage_table, "RowKey ge @low and RowKey lt @high", {"low": low, "high": high})

    def month_sums(self, month: datetime, subscriptions: frozenset[str]) -> list[UsageRow] | None:
        """The month rows of ``subscriptions`` summed from the index's day partitions of ``month``
        (:meth:`month_parts` with nothing set apart); ``None`` while the index is not complete."""
        parts = self.month_parts(month, subscriptions, frozenset())
        return None if parts is None else parts.sums

    def month_parts(self, month: datetime, subscriptions: frozenset[str],
                    apart: frozenset[tuple[str, datetime]]) -> MonthParts | None:
        """The month rows of ``subscriptions`` summed from the index's day partitions of ``month``, but
        the day rows of the (subscription, day)s ``apart``, returned as stored; a query per shard
        (``READS_IN_FLIGHT`` at once), page by page (``index_month_sums``).  ``None`` while the index
        is not complete (a store whose usage table is still empty is complete from now on)."""
        if not self._index_usable():
            return None
        table = self.table(self.index_table)
        # stored names, as read() keeps them
        totals = MonthTotals(month, frozenset(storable_name(s) for s in subscriptions), tuple(_PROPERTY.values()),
                             frozenset((storable_name(subscription), day) for subscription, day in apart))

        def add_days(read: Read) -> None:
            for _, entities, _ in query_pages(table, *read, USAGE_PROPERTIES):
                totals.add(entities)

        with ThreadPoolExecutor(max_workers=READS_IN_FLIGHT) as pool:
            days = index_reads(Granularity.DAY, month, next_month(month))
            list(pool.map(lambda read: self.call(partial(add_days, read)), days))
        return MonthParts(totals.rows(), [usage_row(dict(entity)) for entity in totals.apart_entities])

    def index_complete(self) -> bool:
        """Whether the period index holds every day and month row (its marker is there): a point
        read, remembered once true (the marker is never removed)."""
        if not self._index_known_complete:
            table = self.table(self.index_table)
            try:
                self.call(lambda: table.get_entity(META_PARTITION, COMPLETE))
                self._index_known_complete = True
            except NotFoundError:
                return False
        return True

    # -- which subscriptions may hold a day's hours (shared.services.stored_hours) ----------------
    def mark_touched(self, days: Iterable[tuple[str, datetime]]) -> int:
        """Touched marks in the index's touched partitions (``usage_index``), before the hours they announce."""
        marks = {(entity["PartitionKey"], entity["RowKey"]): entity
                 for entity in (touched_entity(subscription, day) for subscription, day in days)}
        return self.replace_entities(self.index_table, marks.values()) if marks else 0

    def touched_subscriptions(self, day: datetime) -> frozenset[str]:
        return self._subscriptions(touched_reads(day))

    def indexed_subscriptions(self, day: datetime) -> frozenset[str] | None:
        """The day's index partitions (one a shard); ``None`` while the index is not complete.  A store
        whose usage table is still empty is complete from now on (as at its first write)."""
        if not self._index_usable():
            return None
        return self._subscriptions(index_reads(Granularity.DAY, day, day + timedelta(days=1)))

    def _subscriptions(self, reads: list[Read]) -> frozenset[str]:
        entities = self.index_entities(reads, ("SubscriptionId",))
        return frozenset(str(entity.get("SubscriptionId", "")) for entity in entities)

    def index_entities(self, reads: list[Read], select: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every entity the index ``reads`` return (``READS_IN_FLIGHT`` queries at once), in no order."""
        table = self.table(self.index_table)

        def listed(read: Read) -> list[dict[str, Any]]:
            return self.call(lambda: list(query(table, read[0], read[1], select)))

        with ThreadPoolExecutor(max_workers=READS_IN_FLIGHT) as pool:
            answers = list(pool.map(listed, reads))
        return [entity for answer in answers for entity in answer]

    def _index_usable(self) -> bool:
        """Whether the index is complete, marking it so first if the usage table is still empty (the
        first run of an installation reads the index before its first write)."""
        if not self.index_complete():
            self._mark_index_complete_if_fresh()
        return self.index_complete()

    def _mark_index_complete_if_fresh(self) -> None:
        """Before the first usage write: a usage table with no row yet means the index starts with
        it, complete.  An older installation (rows already there) keeps scanning until
        ``chargeback index rebuild`` has written every period and marked it."""
        if self.index_complete():
            return
        usage = self.table(self.usage_table)
        # $top=1: the first page of one entity, not the table
        empty = self.call(lambda: next(iter(usage.list_entities(results_per_page=1, select=["PartitionKey"])),
                                       None)) is None
        if empty:
            self.replace_entities(self.index_table, [complete_marker()])
            self._index_known_complete = True

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

    # -- rollup state ------------------------------------------------------------------------------
    def rows_per_hour(self, name: str) -> float | None:
        table = self.table(self.state_table)
        try:
            entity = self.call(lambda: table.get_entity("rows-per-hour", name))
        except NotFoundError:
            return None
        value = plain(entity.get("RowsPerHour"))
        return float(value) if isinstance(value, int | float) else None

    def record_rows_per_hour(self, name: str, value: float) -> None:
        from azure.data.tables import UpdateMode

        table = self.table(self.state_table)
        entity = {"PartitionKey": "rows-per-hour", "RowKey": name, "RowsPerHour": float(value)}
        self.call(lambda: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def describe(self) -> str:
        return self._describe

    def table_client(self, name: str) -> Any:
        """The raw client of an existing table (tests and tooling read whole tables with it)."""
        return self._service.get_table_client(name)

    def table_names(self) -> list[str]:
        return self.call(lambda: [t.name for t in self._service.list_tables()])


def _sent_until_answered(send: Callable[[], int]) -> int:
    """``send()`` again when the connection broke before an answer came back.

    The SDK's pipeline retries a POST only when the service answered 500/503/504, never on a reset
    or dropped connection, and every ``$batch`` sent here is POST.  Resending is safe because each
    transaction is an idempotent replace of whole entities: if the service did commit the first
    one before the connection dropped, the second writes the same values again.
    """
    from azure.core.exceptions import IncompleteReadError, ServiceRequestError, ServiceResponseError

    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            return send()
        except (ServiceRequestError, ServiceResponseError, IncompleteReadError) as exc:
            if attempt == TRANSACTION_ATTEMPTS:
                raise
            wait = RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1)
            log.warning("a Table Storage transaction lost its connection (%s); sending it again in %.1f s "
                        "(attempt %d of %d)", _first_line(exc), wait, attempt + 1, TRANSACTION_ATTEMPTS)
            time.sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _kept_value(value: Any) -> Any:
    """A kept (JSON-typed) value as a read gives it: DateTime text as an aware datetime."""
    if getattr(getattr(value, "edm_type", None), "value", None) == "Edm.DateTime" and isinstance(value.value, str):
        return datetime.fromisoformat(value.value.replace("Z", "+00:00"))
    return plain(value)


def _first_line(exc: Exception) -> str:
    """The SDK's summary line, without the request/response dump that follows it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _transactions(operations: list[Operation]) -> Iterator[list[Operation]]:
    """Consecutive runs of one partition's operations within both limits: 100 operations, 4 MiB."""
    chunk: list[Operation] = []
    size = 0
    for op in operations:
        if chunk and (len(chunk) == MAX_OPERATIONS or size + op.size > MAX_TRANSACTION_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(op)
        size += op.size
    if chunk:
        yield chunk


def _refuse_duplicates(ordered: list[dict[str, Any]]) -> None:
    """Two entities with one key in one write: the later would silently replace the earlier."""
    for before, after in pairwise(ordered):
        if (before["PartitionKey"], before["RowKey"]) == (after["PartitionKey"], after["RowKey"]):
            raise ValueError(f"two entities share the key {before['PartitionKey']!r}/{before['RowKey']!r}: "
                             "merge them before writing")
