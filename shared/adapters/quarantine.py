"""Quarantine (``<prefix>quarantine``): entities Table Storage refused, kept aside with the reason.

A refused entity would fail its whole transaction on every run, and the watermark would never
move.  Set aside, it stops nothing: the rest of the window is written, the run completes, and each
later run sends the kept entity again (a fix on either side lets it through and clears it).  A
later successful write of the same entity replaces the kept copy and clears it too: an old copy
is never sent over newer data.

One row per refused entity: PartitionKey = the target table's name, RowKey = a hash of the target
keys (any key, even one the service refused, gives a valid one).  The entity itself is kept as
its typed JSON (``table_batch.entity_json``), compressed, in Binary properties (a copy as large as
the service allows fits), so it is sent again exactly as it was built.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from shared.adapters.entity_values import plain
from shared.adapters.table_batch import entity_from_json, entity_json
from shared.errors import NotFoundError

log = logging.getLogger(__name__)
T = TypeVar("T")
SUFFIX = "quarantine"
CHUNK = 60 * 1024  # bytes per Binary property (at most 64 KiB)
MAX_CHUNKS = 15  # ~900 KiB: with the other properties under the 1 MiB entity limit
MAX_REASON = 1000


class Tables(Protocol):
    def table(self, name: str) -> Any: ...

    def call(self, operation: Callable[[], T]) -> T: ...


@dataclass(frozen=True)
class Quarantined:
    table_name: str
    row_key: str
    entity: dict[str, Any] | None  # None: too large to keep even compressed (listed, never resent)
    reason: str
    attempts: int
    since: datetime


def quarantine_key(partition_key: str, row_key: str) -> str:
    text = f"{partition_key}\n{row_key}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:48]


def _safe_text(text: str, limit: int) -> str:
    """Any text as plain ASCII (escapes for the rest), so the quarantine row itself is always storable."""
    return text.encode("ascii", "backslashreplace").decode("ascii")[:limit]


class QuarantineTable:
    def __init__(self, tables: Tables, name: str) -> None:
        self._tables = tables
        self.name = name
        self._keys: set[tuple[str, str]] | None = None  # (table, row key) kept, loaded on first use

    def kept_keys(self) -> set[tuple[str, str]]:
        if self._keys is None:
            table = self._tables.table(self.name)
            entities = self._tables.call(lambda: list(table.list_entities(select=["PartitionKey", "RowKey"])))
            self._keys = {(str(e["PartitionKey"]), str(e["RowKey"])) for e in entities}
        return self._keys

    def put(self, table_name: str, entity: Mapping[str, Any], reason: str, now: datetime | None = None) -> None:
        """Keep ``entity`` (refused by ``table_name``) with the reason; replaces an older copy."""
        from azure.data.tables import UpdateMode

        key = quarantine_key(str(entity.get("PartitionKey", "")), str(entity.get("RowKey", "")))
        previous = self._get(table_name, key)
        payload = zlib.compress(json.dumps(entity_json(entity)).encode("ascii"))
        chunks = [payload[at:at + CHUNK] for at in range(0, len(payload), CHUNK)]
        record: dict[str, Any] = {
            "PartitionKey": table_name, "RowKey": key, "Reason": _safe_text(reason, MAX_REASON),
            "TargetKeys": _safe_text(json.dumps([entity.get("PartitionKey"), entity.get("RowKey")]), 2000),
            "Attempts": (previous.attempts + 1) if previous else 1,
            "Since": previous.since if previous else (now or datetime.now(UTC)),
            "LastAttempt": now or datetime.now(UTC), "Chunks": len(chunks) if len(chunks) <= MAX_CHUNKS else 0,
        }
        if len(chunks) <= MAX_CHUNKS:
            record.update({f"Payload{index:02d}": chunk for index, chunk in enumerate(chunks)})
        else:
            log.error("quarantine: the entity refused by %s (%s) is too large to keep even compressed; "
                      "it is listed without its content", table_name, record["TargetKeys"])
        table = self._tables.table(self.name)
        self._tables.call(lambda: table.upsert_entity(record, mode=UpdateMode.REPLACE))
        self.kept_keys().add((table_name, key))
        log.error("quarantined an entity refused by %s (%s): %s", table_name, record["TargetKeys"], reason)

    def _get(self, table_name: str, key: str) -> Quarantined | None:
        if (table_name, key) not in self.kept_keys():
            return None
        table = self._tables.table(self.name)
        try:
            return _entry(self._tables.call(lambda: table.get_entity(table_name, key)))
        except NotFoundError:
            return None

    def entries(self) -> list[Quarantined]:
        table = self._tables.table(self.name)
        found = [_entry(e) for e in self._tables.call(lambda: list(table.list_entities()))]
        self._keys = {(e.table_name, e.row_key) for e in found}
        return sorted(found, key=lambda e: (e.since, e.table_name, e.row_key))

    def clear(self, table_name: str, partition_key: str, row_key: str) -> bool:
        """Forget the kept copy of an entity just written; ``False`` when there was none."""
        key = quarantine_key(partition_key, row_key)
        if (table_name, key) not in self.kept_keys():
            return False
        table = self._tables.table(self.name)
        with suppress(NotFoundError):  # already gone: cleared by another writer
            self._tables.call(lambda: table.delete_entity(table_name, key))
        self.kept_keys().discard((table_name, key))
        return True

    def count(self) -> int:
        table = self._tables.table(self.name)
        return self._tables.call(lambda: sum(1 for _ in table.list_entities(select=["RowKey"])))


def _entry(record: Any) -> Quarantined:
    chunks = int(plain(record.get("Chunks")) or 0)
    entity = None
    if chunks:
        payload = b"".join(bytes(plain(record[f"Payload{index:02d}"])) for index in range(chunks))
        entity = entity_from_json(json.loads(zlib.decompress(payload)))
    since = record.get("Since")
    return Quarantined(str(record["PartitionKey"]), str(record["RowKey"]), entity, str(record.get("Reason") or ""),
                       int(plain(record.get("Attempts")) or 0),
                       since.astimezone(UTC) if isinstance(since, datetime) else datetime.min.replace(tzinfo=UTC))


class IncidentTables(Tables, Protocol):
    state_table: str


class QuarantineIncidentTable:
    """The open quarantine incident (state table, PartitionKey ``incident``, RowKey ``quarantine``):
    when the quarantine last went from empty to holding rows.  Created only if absent, so two runs
    agree on one start; deleted once the quarantine is empty again."""

    PARTITION, ROW = "incident", "quarantine"

    def __init__(self, tables: IncidentTables) -> None:
        self._tables = tables

    def open_since(self) -> datetime | None:
        table = self._tables.table(self._tables.state_table)
        try:
            entity = self._tables.call(lambda: table.get_entity(self.PARTITION, self.ROW))
        except NotFoundError:
            return None
        since = plain(entity.get("Since"))
        return since.astimezone(UTC) if isinstance(since, datetime) else None

    def open(self, now: datetime) -> datetime:
        """The incident's start: ``now`` when this call opened it, else the start another run stored."""
        from shared.errors import AlreadyExistsError

        table = self._tables.table(self._tables.state_table)
        record = {"PartitionKey": self.PARTITION, "RowKey": self.ROW, "Since": now}
        try:
            self._tables.call(lambda: table.create_entity(record))
        except AlreadyExistsError:
            return self.open_since() or now
        return now

    def close(self) -> None:
        table = self._tables.table(self._tables.state_table)
        with suppress(NotFoundError):
            self._tables.call(lambda: table.delete_entity(self.PARTITION, self.ROW))
