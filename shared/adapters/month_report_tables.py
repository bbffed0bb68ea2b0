"""Kept month reports in Table Storage: ``<prefix>reports``.

One partition per report and month (``usage-month|2026-11``).  RowKey ``current`` says which
version is served: the digest of its inputs, its write id, how many parts and bytes, and the
SHA-256 of those bytes.  The parts (``part|<write id>|0000``, ...) hold the rendered text,
zlib-compressed, in binary properties of at most 64,000 bytes (``D00`` ... ``D11``: 768,000 bytes an
entity, under the 1 MiB entity limit; the store's transactions also keep under 4 MiB).

A version is written parts first, then ``current``; older parts are deleted after.  So a reader
that reads ``current`` and then its parts finds them all, or (a newer version replaced them in
between) fewer than ``current`` says, or bytes whose digest differs: then it is not served, and the
report is rendered live.  Nothing here decides *whether* a report may be kept: the month report
service does (:mod:`shared.services.month_csv`).
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import uuid
import zlib
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from shared.adapters.table_query import query
from shared.adapters.tables import TableStore
from shared.core.keys import prefix_range
from shared.errors import NotFoundError

log = logging.getLogger(__name__)
SEGMENT_BYTES = 64_000  # a binary property's limit is 64 KiB
SEGMENTS_PER_PART = 12
PART_BYTES = SEGMENT_BYTES * SEGMENTS_PER_PART
MAX_KEPT_BYTES = 48 * 1024 * 1024  # compressed; a larger report is always rendered live
CURRENT = "current"
READ_PIECE = 256 * 1024  # compressed bytes inflated at a time while serving


def reports_table_name(prefix: str) -> str:
    return f"{prefix}reports"


def _partition(report: str, month: str) -> str:
    return f"{report}|{month}"


PARTS = "part|"


def _parts_of(write_id: str) -> str:
    """The RowKey head of one version's parts."""
    return f"{PARTS}{write_id}|"


def _part_key(write_id: str, index: int) -> str:
    return f"{_parts_of(write_id)}{index:04d}"


def _parts_query(partition: str, head: str) -> tuple[str, dict[str, str]]:
    low, high = prefix_range(head)
    return "PartitionKey eq @p and RowKey ge @low and RowKey lt @high", {"p": partition, "low": low, "high": high}


class TableMonthReports:
    """:class:`shared.ports.MonthReportStore` over the account's tables."""

    def __init__(self, store: TableStore) -> None:
        self._store = store
        self._name = reports_table_name(store.prefix)

    def generation(self, month: str) -> str | None:
        return self._store.report_generation(month)

    def read(self, report: str, month: str, inputs: str) -> Iterator[str] | None:
        table = self._store.table(self._name)
        partition = _partition(report, month)
        try:
            head = self._store.call(lambda: table.get_entity(partition, CURRENT))
        except NotFoundError:
            return None
        if head.get("Inputs") != inputs:
            return None
        write_id, parts = str(head["WriteId"]), int(head["Parts"])
        entities = self._store.call(lambda: list(query(table, *_parts_query(partition, _parts_of(write_id)))))
        blob = b"".join(entity[f"D{i:02d}"] for entity in sorted(entities, key=lambda e: str(e["RowKey"]))
                        for i in range(int(entity["Segments"])))
        if len(entities) != parts or hashlib.sha256(blob).hexdigest() != head.get("Sha256"):
            # replaced while it was read (or damaged): rendered live instead
            log.info("kept report %s %s changed while read; rendering it live", report, month)
            return None
        return _inflated(blob)

    def writer(self, report: str, month: str, inputs: str) -> TableReportWriter:
        return TableReportWriter(self._store, self._name, _partition(report, month), inputs)


def _inflated(blob: bytes) -> Iterator[str]:
    inflate = zlib.decompressobj()
    text = codecs.getincrementaldecoder("utf-8")()
    for at in range(0, len(blob), READ_PIECE):
        piece = text.decode(inflate.decompress(blob[at:at + READ_PIECE]))
        if piece:
            yield piece
    rest = text.decode(inflate.flush(), final=True)
    if rest:
        yield rest


class TableReportWriter:
    """Compresses the report as it is added; :meth:`commit` stores it (parts, then ``current``)."""

    def __init__(self, store: TableStore, table_name: str, partition: str, inputs: str) -> None:
        self._store, self._table_name, self._partition, self._inputs = store, table_name, partition, inputs
        self._deflate = zlib.compressobj(6)
        self._pieces: list[bytes] = []
        self._size = 0

    def add(self, text: str) -> None:
        if self._size > MAX_KEPT_BYTES:
            return
        piece = self._deflate.compress(text.encode("utf-8"))
        if piece:
            self._pieces.append(piece)
            self._size += len(piece)

    def commit(self) -> bool:
        blob = b"".join([*self._pieces, self._deflate.flush()])
        self._pieces = []
        if self._size > MAX_KEPT_BYTES or len(blob) > MAX_KEPT_BYTES:
            log.info("report %s is %d compressed bytes, over the %d kept: always rendered live",
                     self._partition, len(blob), MAX_KEPT_BYTES)
            return False
        write_id = uuid.uuid4().hex
        parts = [self._part(write_id, index, blob[at:at + PART_BYTES])
                 for index, at in enumerate(range(0, max(len(blob), 1), PART_BYTES))]
        if self._store.replace_entities(self._table_name, parts) != len(parts):
            return False  # a part set aside: no version names them
        head = {"PartitionKey": self._partition, "RowKey": CURRENT, "Inputs": self._inputs, "WriteId": write_id,
                "Parts": len(parts), "Bytes": len(blob), "Sha256": hashlib.sha256(blob).hexdigest()}
        if self._store.replace_entities(self._table_name, [head]) != 1:
            return False
        self._delete_parts_except(write_id)
        return True

    def _part(self, write_id: str, index: int, data: bytes) -> dict[str, Any]:
        segments = [data[at:at + SEGMENT_BYTES] for at in range(0, len(data), SEGMENT_BYTES)]
        return {"PartitionKey": self._partition, "RowKey": _part_key(write_id, index), "Segments": len(segments),
                **{f"D{i:02d}": segment for i, segment in enumerate(segments)}}

    def _delete_parts_except(self, write_id: str) -> None:
        """Older versions' parts (nothing names them any more)."""
        table = self._store.table(self._table_name)
        listed = self._store.call(lambda: list(query(table, *_parts_query(self._partition, PARTS), ("RowKey",))))
        for entity in listed:
            row_key = str(entity["RowKey"])
            if not row_key.startswith(_parts_of(write_id)):
                with suppress(NotFoundError):  # another writer deleted it first
                    self._store.call(lambda key=row_key: table.delete_entity(self._partition, key))  # type: ignore[misc]
