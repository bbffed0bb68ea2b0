"""The meter price book in Table Storage (``<prefix>meterprices``), replaced atomically.

A Table Storage transaction holds at most 100 entities of one partition, and a price book has
thousands of rows, so a book is never rewritten in place.  Each committed sync writes the whole
merged book as a new *generation*: partitions ``gen-<sync id>-<nnnn>`` of at most 100 rows, each
written by one create-only transaction.  Then one *pointer* entity (PartitionKey ``pointer``,
RowKey = currency) is switched to the new generation, conditioned on the ETag read before the
sync.  Readers follow the pointer, so they see the old book or the new one, never a mixture; a
sync that fails before the switch (or loses the race to another one) leaves the pointer as it was.
Old generations are kept: history is never deleted (an unswitched generation is inert).

Row properties are the meter-file record (``shared.core.meters.meter_price_record``) with
capitalised names; amounts are exact decimal strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from shared.adapters.entity_values import int64, plain, utc
from shared.adapters.table_access import TableAccess
from shared.core.meters import MeterPrice, PriceBook, StoredBook, meter_price_from_record, meter_price_record
from shared.errors import NotFoundError, StorageError

METER_PRICES = "meterprices"
POINTER_PARTITION = "pointer"
ROWS_PER_PARTITION = 100  # one transaction per partition (the service limit)


def _property(name: str) -> str:
    return name[0].upper() + name[1:]


def row_entity(partition: str, index: int, row: MeterPrice) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": f"{index:04d}"}
    for name, value in meter_price_record(row).items():
        if value is not None:  # Table Storage has no null: the property is left out
            entity[_property(name)] = value
    return entity


def row_from(entity: Any) -> MeterPrice:
    where = f"{entity['PartitionKey']}/{entity['RowKey']}"
    record = {name[0].lower() + name[1:]: plain(value) for name, value in dict(entity).items()
              if name not in ("PartitionKey", "RowKey")}
    return meter_price_from_record(where, record)


class MeterPriceTableStore:
    """Implements ``shared.services.price_sync.MeterPriceStore``."""

    def __init__(self, access: TableAccess) -> None:
        self._access = access

    def load(self, currency: str) -> StoredBook:
        table = self._access.table(METER_PRICES)
        try:
            pointer = self._access.call(lambda: table.get_entity(POINTER_PARTITION, currency))
        except NotFoundError:
            return StoredBook(PriceBook(currency), None)
        generation = str(pointer["Generation"])
        partitions, expected = int(plain(pointer["Partitions"])), int(plain(pointer["Rows"]))
        def read_partition(partition: str) -> list[Any]:
            return list(table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}))

        rows: list[MeterPrice] = []
        for n in range(partitions):
            rows.extend(row_from(e) for e in self._access.call(partial(read_partition, _partition(generation, n))))
        if len(rows) != expected:
            raise StorageError(f"meter price generation {generation} holds {len(rows)} rows, its pointer says "
                               f"{expected}")
        return StoredBook(PriceBook(currency, tuple(rows)), str(pointer.metadata["etag"]), generation,
                          utc(pointer.get("AsOf")))

    def commit(self, book: PriceBook, previous: StoredBook, sync_id: str, as_of: datetime) -> StoredBook:
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        table = self._access.table(METER_PRICES)
        generation = f"gen-{sync_id}"
        chunks = [book.rows[i:i + ROWS_PER_PARTITION] for i in range(0, len(book.rows), ROWS_PER_PARTITION)]
        for n, chunk in enumerate(chunks):
            partition = _partition(generation, n)
            operations = [("create", row_entity(partition, i, row)) for i, row in enumerate(chunk)]
            self._access.call(partial(table.submit_transaction, operations))
        pointer = {"PartitionKey": POINTER_PARTITION, "RowKey": book.currency, "Generation": generation,
                   "Partitions": int64(len(chunks)), "Rows": int64(len(book.rows)), "AsOf": as_of.astimezone(UTC),
                   "CommittedAt": datetime.now(UTC)}
        # The one step that makes the new book current: refused if another sync switched it meanwhile.
        if previous.version is None:
            metadata = self._access.call(lambda: table.create_entity(pointer))
        else:
            metadata = self._access.call(lambda: table.update_entity(
                pointer, mode=UpdateMode.REPLACE, etag=previous.version, match_condition=MatchConditions.IfNotModified))
        return StoredBook(book, str(metadata["etag"]), generation, as_of.astimezone(UTC))


def _partition(generation: str, n: int) -> str:
    return f"{generation}-{n:04d}"
