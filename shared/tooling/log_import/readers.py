"""Exported APIM logs -> Log Analytics rows of ``queries/schemas`` (pure: no DuckDB, no writes).

Accepted contents (gzip-compressed or not, detected by magic bytes):

* APIM diagnostic-setting records (``category`` GatewayLogs / GatewayLlmLogs): JSON lines as a
  storage-account export writes them, a ``{"records": [...]}`` document (older storage exports,
  Event Hub messages), a plain JSON array, or an Event Hub Capture Avro file whose event bodies
  are such documents (needs ``fastavro``).  Fields are renamed to the Log Analytics columns.
* Rows exported from Log Analytics: CSV with a header row (``TimeGenerated [UTC]`` as the portal
  writes it), or JSON objects keyed by column name.  The table comes from a ``Type`` column, else
  from the caller's ``table``.

Every record becomes a :class:`Row` (values coerced to the column's Kusto type; ``Type`` set) or a
:class:`Malformed` saying where and why; nothing is dropped silently.  This module detects the
format; :mod:`.json_records`, :mod:`.csv_export` and :mod:`.avro_events` read each one, and
:mod:`.records` turns what they read into rows.
"""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import ImportFormatError
from shared.tooling.log_import.avro_events import AVRO_MAGIC, GZIP_MAGIC, avro_items
from shared.tooling.log_import.csv_export import csv_items
from shared.tooling.log_import.json_records import json_items
from shared.tooling.log_import.records import NEEDS_TABLE, Item, Malformed


@dataclass(frozen=True)
class LogFile:
    kind: str  # "json", "csv" or "avro", with ", gzip" when it was compressed
    unit: str  # what Malformed.line counts: "line" or "event"
    items: Iterator[Item] = field(repr=False)  # single use


def parse_file(path: Path, table: str | None = None) -> LogFile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return parse_bytes(data, table)
    except ImportFormatError as exc:
        raise ImportFormatError(f"{path}: {exc}") from exc


def parse_bytes(data: bytes, table: str | None = None) -> LogFile:
    """Detect the shape of ``data``; raises ImportFormatError when nothing in it can be read."""
    suffix = ""
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImportFormatError(f"corrupt gzip data: {exc}") from exc
        suffix = ", gzip"
    if data[:4] == AVRO_MAGIC:
        return LogFile("avro" + suffix, "event", avro_items(data, table))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"not UTF-8 text, gzip or Avro (byte {exc.start})") from exc
    del data
    start = text.lstrip()[:1]
    if start in ("", "{", "["):
        items = json_items(text, table)
        first = next(items, None)
        if isinstance(first, Malformed) and first.reason == NEEDS_TABLE:
            raise ImportFormatError(NEEDS_TABLE)
        return LogFile("json" + suffix, "line", itertools.chain([] if first is None else [first], items))
    return LogFile("csv" + suffix, "line", csv_items(text, table))
