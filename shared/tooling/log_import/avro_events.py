"""Event Hub Capture files: Avro records whose ``Body`` is a diagnostic-settings JSON document
(gzip-compressed or not).  Needs ``fastavro`` (the local extras); a record is numbered by its
event, and a corrupt block ends the file, since what follows it cannot be located."""

from __future__ import annotations

import functools
import gzip
import io
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

from shared.errors import ImportFormatError
from shared.tooling.log_import.json_records import json_values
from shared.tooling.log_import.records import Item, Malformed, record_to_row

AVRO_MAGIC = b"Obj\x01"
GZIP_MAGIC = b"\x1f\x8b"  # whole files, and event bodies inside Avro files


def avro_items(data: bytes, table: str | None) -> Iterator[Item]:
    """Event Hub Capture: Avro records whose ``Body`` is a diagnostic-settings JSON document."""
    try:
        import fastavro
    except ImportError as exc:  # pragma: no cover - fastavro is in the local extras
        raise ImportFormatError("Avro (Event Hub Capture) files need fastavro: pip install -e '.[local]'") from exc
    try:
        reader = fastavro.reader(io.BytesIO(data))
    except Exception as exc:  # fastavro raises assorted types for a bad header
        raise ImportFormatError(f"not a readable Avro file: {exc}") from exc
    return _avro_events(iter(reader), table)


def _event_position(number: int, _pos: int) -> tuple[int, int | None]:
    return number, None  # a record is located by its event; columns inside a body mean nothing


def _avro_events(reader: Iterator[Any], table: str | None) -> Iterator[Item]:
    number = 0
    while True:
        number += 1
        try:
            event = next(reader)
        except StopIteration:
            return
        except Exception as exc:  # a corrupt block: what follows cannot be located
            yield Malformed(number, f"unreadable Avro data, rest of the file skipped: {exc}")
            return
        body = event.get("Body") if isinstance(event, Mapping) else None
        if not body:
            yield Malformed(number, "Event Hub event without a body")
            continue
        if isinstance(body, bytes):
            if body[:2] == GZIP_MAGIC:
                try:
                    body = gzip.decompress(body)
                except (OSError, EOFError, zlib.error) as exc:
                    yield Malformed(number, f"corrupt gzip event body: {exc}")
                    continue
            try:
                body = body.decode("utf-8-sig")
            except UnicodeDecodeError:
                yield Malformed(number, "event body is not UTF-8 text")
                continue
        for entry in json_values(str(body), functools.partial(_event_position, number)):
            yield entry if isinstance(entry, Malformed) else record_to_row(entry.value, entry.line, table)
