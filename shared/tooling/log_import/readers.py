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
:class:`Malformed` saying where and why; nothing is dropped silently.
"""

from __future__ import annotations

import bisect
import csv
import functools
import gzip
import hashlib
import io
import itertools
import json
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.errors import ImportFormatError
from shared.workspace_schema import Column, table_schemas

GATEWAY = "ApiManagementGatewayLogs"
LLM = "ApiManagementGatewayLlmLog"
TABLES = (GATEWAY, LLM)
CATEGORIES = {"gatewaylogs": GATEWAY, "gatewayllmlogs": LLM}
# Diagnostic-record names whose Log Analytics column has another name; the rest match case-insensitively.
DIAGNOSTIC_RENAMES = {"time": "TimeGenerated", "durationms": "TotalTime", "location": "Region",
                      "resourceid": "_ResourceId", "category": "Category"}
SYNTHETIC_PREFIX = "import-"  # CorrelationId given to a row that has none: import-<hash of the row>
NEEDS_TABLE = "Log Analytics row without a Type column; say which table with --table"

GZIP_MAGIC = b"\x1f\x8b"
AVRO_MAGIC = b"Obj\x01"
CSV_FIELD_LIMIT = 1 << 30
INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Row:
    table: str
    values: dict[str, Any]  # column -> value of the column's type (datetimes naive UTC, dynamic as JSON text)
    line: int
    ignored: tuple[str, ...] = ()  # source fields no column matched


@dataclass(frozen=True)
class Malformed:
    line: int  # line (JSON, CSV) or event number (Avro) where the record starts
    reason: str
    table: str | None = None  # when known (the record was readable enough to tell)


Item = Row | Malformed


@dataclass(frozen=True)
class LogFile:
    kind: str  # "json", "csv" or "avro", with ", gzip" when it was compressed
    unit: str  # what Malformed.line counts: "line" or "event"
    items: Iterator[Item] = field(repr=False)  # single use


def table_name(text: str) -> str | None:
    """The canonical table for a name given in any case, or None."""
    return {t.lower(): t for t in TABLES}.get(text.strip().lower())


def dedupe_key(row: Row) -> tuple[Any, ...]:
    """Gateway rows are one per request; LLM-log rows one per request and message chunk."""
    if row.table == LLM:
        return (row.values.get("CorrelationId"), row.values.get("SequenceNumber"))
    return (row.values.get("CorrelationId"),)


# ---------------------------------------------------------------------------------------- files


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
        return LogFile("avro" + suffix, "event", _avro_items(data, table))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"not UTF-8 text, gzip or Avro (byte {exc.start})") from exc
    del data
    start = text.lstrip()[:1]
    if start in ("", "{", "["):
        items = _json_items(text, table)
        first = next(items, None)
        if isinstance(first, Malformed) and first.reason == NEEDS_TABLE:
            raise ImportFormatError(NEEDS_TABLE)
        return LogFile("json" + suffix, "line", itertools.chain([] if first is None else [first], items))
    return LogFile("csv" + suffix, "line", _csv_items(text, table))


# ----------------------------------------------------------------------------------------- JSON


class _Lines:
    def __init__(self, text: str) -> None:
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def of(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1


_WS = re.compile(r"\s*")


def _skip_space(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos

_RECORDS_DOC = re.compile(r'\{\s*"records"\s*:\s*(?=\[)')
_DECODER = json.JSONDecoder()


def _json_values(text: str, line_of: Callable[[int], int] | None = None) -> Iterator[tuple[int, Any] | Malformed]:
    """Records in ``text`` with their start line: top-level values one after another (JSON lines,
    concatenated documents), each array or ``{"records": [...]}`` expanded to its elements.

    A value that is not valid JSON is reported at its line and reading resumes at the next line.
    """
    lines_of = line_of or _Lines(text).of
    pos, end = 0, len(text)
    while True:
        pos = _skip_space(text, pos)
        if pos >= end:
            return
        line = lines_of(pos)
        try:
            value, after = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield Malformed(line, f"bad JSON: {exc.msg} (column {exc.colno})")
            newline = text.find("\n", pos)
            pos = end if newline < 0 else newline + 1
            continue
        records = _RECORDS_DOC.match(text, pos)
        if isinstance(value, list):
            yield from _array_elements(text, pos, lines_of)
        elif isinstance(value, dict) and isinstance(value.get("records"), list):
            if records:  # the usual layout: element line numbers are known
                yield from _array_elements(text, records.end(), lines_of)
            else:
                yield from ((line, element) for element in value["records"])
        else:
            yield line, value
        pos = after


def _array_elements(text: str, bracket: int, line_of: Callable[[int], int]) -> Iterator[tuple[int, Any]]:
    """Elements of the (already validated) JSON array starting at ``text[bracket] == "["``."""
    pos = _skip_space(text, bracket + 1)
    if text[pos] == "]":
        return
    while True:
        element, after = _DECODER.raw_decode(text, pos)
        yield line_of(pos), element
        pos = _skip_space(text, after)
        if text[pos] == "]":
            return
        pos = _skip_space(text, pos + 1)  # past the comma


def _json_items(text: str, table: str | None) -> Iterator[Item]:
    for entry in _json_values(text):
        yield entry if isinstance(entry, Malformed) else record_to_row(entry[1], entry[0], table)


def _avro_items(data: bytes, table: str | None) -> Iterator[Item]:
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


def _constant(value: int, _pos: int) -> int:
    return value


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
        for entry in _json_values(str(body), functools.partial(_constant, number)):
            yield entry if isinstance(entry, Malformed) else record_to_row(entry[1], entry[0], table)


# ------------------------------------------------------------------------------------------ CSV

_HEADER = re.compile(r"^(?P<name>.*?)\s*\[(?P<zone>[^\]]*)\]\s*$")


def _column_header(text: str) -> str:
    """``TimeGenerated [UTC]`` -> ``TimeGenerated``; times shown in another zone cannot be converted."""
    match = _HEADER.match(text)
    if not match:
        return text.strip()
    if match["zone"].strip().upper() != "UTC":
        raise ImportFormatError(
            f"column {text!r} holds times in a display time zone; export again with the time zone set to UTC")
    return match["name"]


def _csv_items(text: str, table: str | None) -> Iterator[Item]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))  # logged bodies and messages are large
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_raw = next(reader, None)
    except csv.Error as exc:
        raise ImportFormatError(f"neither JSON nor readable CSV: {exc}") from exc
    if not header_raw:
        raise ImportFormatError("neither JSON nor a CSV export: the first line is empty")
    header = [_column_header(h) for h in header_raw]
    lowered = {h.lower() for h in header}
    if "timegenerated" not in lowered:
        raise ImportFormatError(
            "neither JSON nor a Log Analytics CSV export (no TimeGenerated column in the first line)")
    if "type" not in lowered and table is None:
        raise ImportFormatError("the CSV export has no Type column; say which table with --table")
    return _csv_rows(reader, header, table)


def _csv_rows(reader: Any, header: list[str], table: str | None) -> Iterator[Item]:
    last = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Malformed(last + 1, f"unreadable CSV, rest of the file skipped: {exc}")
            return
        line, last = last + 1, reader.line_num
        if not cells or cells == [""]:
            continue
        if len(cells) != len(header):
            yield Malformed(line, f"{len(cells)} fields where the header has {len(header)}")
            continue
        yield record_to_row(dict(zip(header, cells, strict=True)), line, table)


# -------------------------------------------------------------------------------------- records


@functools.cache
def _columns(table: str) -> dict[str, Column]:
    return {c.name.lower(): c for c in table_schemas()[table]}


@functools.cache
def _types(table: str) -> dict[str, str]:
    return {c.name: c.kql_type for c in table_schemas()[table]}


def _get(record: Mapping[str, Any], name: str) -> Any:
    for key, value in record.items():
        if key.lower() == name:
            return value
    return None


def record_to_row(record: Any, line: int, table: str | None = None) -> Item:
    """One diagnostic record or Log Analytics row (a JSON object) -> Row or Malformed."""
    if not isinstance(record, dict):
        return Malformed(line, f"a record must be a JSON object, not {type(record).__name__}")
    if any(_plain(key) == "timegenerated" for key in record):
        return _analytics_row(record, line, table)
    return _diagnostic_row(record, line)


def _plain(key: str) -> str:
    if "[" not in key:
        return key.strip().lower()
    match = _HEADER.match(key)
    return (match["name"] if match else key).strip().lower()


def _diagnostic_row(record: dict[str, Any], line: int) -> Item:
    category = _get(record, "category")
    if not isinstance(category, str) or not category:
        return Malformed(line, "no category (a diagnostic record needs GatewayLogs or GatewayLlmLogs)")
    table = CATEGORIES.get(category.lower())
    if table is None:
        return Malformed(line, f"unknown category {category!r}")
    columns = _columns(table)
    raw: dict[str, Any] = {}
    ignored: list[str] = []
    properties: Any = None
    for key, value in record.items():
        lowered = key.lower()
        if lowered == "properties":
            properties = value
            continue
        column = columns.get(DIAGNOSTIC_RENAMES.get(lowered, lowered).lower())
        if column is not None:
            raw[column.name] = value
        elif lowered != "category":  # consumed: it chose the table
            ignored.append(key)
    if isinstance(properties, str):
        try:
            properties = json.loads(properties)
        except json.JSONDecodeError:
            return Malformed(line, "properties is neither an object nor JSON text", table)
    if properties is not None and not isinstance(properties, dict):
        return Malformed(line, "properties is not an object", table)
    for key, value in (properties or {}).items():
        column = columns.get(key.lower())
        if column is not None:
            raw.setdefault(column.name, value)
        elif isinstance(value, dict):  # e.g. lastError {elapsed, source, reason...} -> LastErrorElapsed...
            for sub, sub_value in value.items():
                nested = columns.get((key + sub).lower())
                if nested is not None:
                    raw.setdefault(nested.name, sub_value)
                else:
                    ignored.append(f"properties.{key}.{sub}")
        else:
            ignored.append(f"properties.{key}")
    if raw.get("TimeGenerated") in (None, ""):
        return Malformed(line, "missing time", table)
    return _finish(table, raw, line, ignored)


def _analytics_row(record: dict[str, Any], line: int, hint: str | None) -> Item:
    declared = _get(record, "type")
    if declared not in (None, ""):
        table = table_name(str(declared))
        if table is None:
            return Malformed(line, f"Type {declared!r} is not an importable table ({', '.join(TABLES)})")
        if hint is not None and table != hint:
            return Malformed(line, f"Type {declared!r} but --table {hint}", table)
    elif hint is not None:
        table = hint
    else:
        return Malformed(line, NEEDS_TABLE)
    columns = _columns(table)
    raw: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in record.items():
        try:
            name = _column_header(key) if "[" in key else key
        except ImportFormatError as exc:
            return Malformed(line, str(exc), table)
        column = columns.get(name.lower())
        if column is not None:
            raw[column.name] = value
        else:
            ignored.append(name)
    if raw.get("TimeGenerated") in (None, ""):
        return Malformed(line, "missing TimeGenerated", table)
    return _finish(table, raw, line, ignored)


_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)/", re.IGNORECASE)


def _finish(table: str, raw: dict[str, Any], line: int, ignored: list[str]) -> Item:
    types = _types(table)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            values[name] = converted = coerce(types[name], value)
            if isinstance(converted, str) and not converted.isascii():
                converted.encode("utf-8")  # a lone surrogate from a JSON escape cannot be stored
        except UnicodeEncodeError:
            return Malformed(line, f"{name}: not valid Unicode (lone surrogate)", table)
        except ValueError as exc:
            return Malformed(line, f"{name}: {exc}", table)
    values["Type"] = table
    resource = values.get("_ResourceId")
    if not values.get("_SubscriptionId") and isinstance(resource, str) and (m := _SUBSCRIPTION.match(resource)):
        values["_SubscriptionId"] = m.group(1)
    if not values.get("CorrelationId"):
        canonical = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
        values["CorrelationId"] = SYNTHETIC_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return Row(table, values, line, tuple(ignored))


# ------------------------------------------------------------------------------------- coercion


def coerce(kql_type: str, value: Any) -> Any:
    """``value`` as the Python value of a Kusto column type; ValueError names what was wrong."""
    if value is None:
        return None
    if kql_type in ("string", "guid"):
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
    if kql_type in ("int", "long"):
        return _integer(value, INT_RANGE if kql_type == "int" else LONG_RANGE, kql_type)
    if kql_type == "real":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"cannot convert {value!r} to real")
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"cannot convert {value!r} to real") from None
    if kql_type == "bool":
        return _boolean(value)
    if kql_type == "datetime":
        if isinstance(value, datetime):
            return _naive_utc(value)
        if isinstance(value, str):
            return parse_datetime(value)
        raise ValueError(f"cannot convert {value!r} to datetime")
    if kql_type == "dynamic":
        if isinstance(value, str):
            try:
                json.loads(value)
            except json.JSONDecodeError:
                return json.dumps(value, ensure_ascii=False)  # a plain string: a JSON string value
            return value
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    raise ValueError(f"columns of type {kql_type} cannot be imported")


def _integer(value: Any, bounds: tuple[int, int], kql_type: str) -> int:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            try:
                as_float = float(value)
            except ValueError:
                as_float = float("nan")
            number = int(as_float) if as_float.is_integer() else None
    if number is None:
        raise ValueError(f"cannot convert {value!r} to {kql_type}")
    if not bounds[0] <= number <= bounds[1]:
        raise ValueError(f"{number} is out of range for {kql_type}")
    return number


_TRUE = {"true": True, "false": False, "1": True, "0": False}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE:
        return _TRUE[value.lower()]
    raise ValueError(f"cannot convert {value!r} to bool")


# Portal CSV exports write datetimes as the portal displays them: en-US or year-first layouts.
_US_TIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}),?\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*([AaPp][Mm])")
_YEAR_FIRST_TIME = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2}),?\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?")


def _naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def parse_datetime(text: str) -> datetime:
    """ISO 8601 (Z or offset -> UTC; no offset = UTC), or the portal's en-US / year-first display."""
    text = text.strip()
    try:
        return _naive_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        if match := _US_TIME.fullmatch(text):
            month, day, year, hour, minute, second, fraction, half = match.groups()
            hour_24 = int(hour) % 12 + (12 if half.upper() == "PM" else 0)
            if not 1 <= int(hour) <= 12:
                raise ValueError
            return datetime(int(year), int(month), int(day), hour_24, int(minute), int(second),
                            _microseconds(fraction))
        if match := _YEAR_FIRST_TIME.fullmatch(text):
            year, month, day, hour, minute, second, fraction = match.groups()
            return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                            _microseconds(fraction))
    except ValueError:
        pass
    raise ValueError(f"cannot convert {text!r} to datetime")


def _microseconds(fraction: str | None) -> int:
    return int((fraction or "").ljust(6, "0")[:6])
