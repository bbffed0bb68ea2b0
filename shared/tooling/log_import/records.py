"""Log records -> rows of the Log Analytics tables (``queries/schemas``), or why not.

A record is either an APIM diagnostic-setting record (``category`` GatewayLogs / GatewayLlmLogs,
fields renamed to the Log Analytics columns, ``properties`` flattened) or a row exported from Log
Analytics (keyed by column name; the table from its ``Type`` column, else from the caller).  Each
becomes a :class:`Row` (values coerced to the column's Kusto type; ``Type`` set; a CorrelationId
made up when there is none) or a :class:`Malformed` saying where and why.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import ImportFormatError
from shared.tooling.log_import.coercion import coerce
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
    column: int | None = None  # where on its line the record starts (JSON), e.g. inside a one-line document


Item = Row | Malformed


def table_name(text: str) -> str | None:
    """The canonical table for a name given in any case, or None."""
    return {t.lower(): t for t in TABLES}.get(text.strip().lower())


def dedupe_key(row: Row) -> tuple[Any, ...]:
    """Gateway rows are one per request; LLM-log rows one per request and message chunk."""
    if row.table == LLM:
        return (row.values.get("CorrelationId"), row.values.get("SequenceNumber"))
    return (row.values.get("CorrelationId"),)


_HEADER = re.compile(r"^(?P<name>.*?)\s*\[(?P<zone>[^\]]*)\]\s*$")


def column_header(text: str) -> str:
    """``TimeGenerated [UTC]`` -> ``TimeGenerated``; times shown in another zone cannot be converted."""
    match = _HEADER.match(text)
    if not match:
        return text.strip()
    if match["zone"].strip().upper() != "UTC":
        raise ImportFormatError(
            f"column {text!r} holds times in a display time zone; export again with the time zone set to UTC")
    return match["name"]


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
            name = column_header(key) if "[" in key else key
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
