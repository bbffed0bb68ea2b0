"""A loopback Table Storage stand-in for the scale benches: the REST calls of this project, answered
from memory in a process of its own, with hourly usage rows counted and dropped.

What it is: an HTTP server (``http.server``, threads) that speaks the subset of the Azure Table
Storage REST protocol the project's table code and azure-data-tables 12.x send, in the development
account's path style (``http://127.0.0.1:<port>/devstoreaccount1/...``, any SharedKey signature
accepted): create / list / delete tables; point get, insert (``POST``), replace or upsert (``PUT``,
with or without ``If-Match``), merge and delete of one entity; entity-group transactions (``$batch``,
one changeset of PUT / MERGE / POST / DELETE, atomic, at most 100 operations of one partition, 4 MiB);
queries (``GET <table>()`` with ``$filter``, ``$select``, ``$top``) in key order, pages of at most
1,000 entities continued by ``x-ms-continuation-NextPartitionKey`` / ``NextRowKey``; minimal
metadata JSON, with ``@odata.type`` on Int64, DateTime, Binary and Guid values (and on a Double that
is NaN or infinite) as the service returns them; the service's error codes (``ResourceNotFound``,
``EntityAlreadyExists``, ``UpdateConditionNotSatisfied``, ``TableAlreadyExists``, ...) in
``odata.error`` bodies.  Filters are parsed (a tokenizer and a recursive-descent parser, never
``eval``): ``eq ne gt ge lt le``, ``and or not``, parentheses, string literals with ``''``, numbers,
``true``/``false``, ``datetime'...'``, ``guid'...'``, ``X'...'``.  A query reads only the partitions
and row keys its key comparisons allow (an ``and`` of PartitionKey / RowKey bounds), in sorted order.

What it is not: an emulator.  Nothing is persisted, there is no authentication, no SAS, no access
policy, no CORS, no ``$batch`` of several changesets, no query of tables by filter, no service
throttling or timeouts.  Use Azurite to check behaviour; use this to measure *our* process.

What it drops: entities of a usage table (a table whose name ends in ``usage``, as ``<prefix>usage``)
whose RowKey starts with ``h|`` (hourly rows) are counted and discarded: the write answers success,
as Table Storage would, and a read never sees them.  A month at 10,000 subscriptions is 14.4M hourly
entities, which no in-memory stand-in (nor Azurite, ~3 KB each) holds on this machine, and a backfill
of a fresh range never reads them back.  Everything else is kept: the day and month rows, the period
index (``<prefix>usageindex``, whose day partitions ``TableStore.month_sums`` reads), touched marks,
run state, the writer lease, the quarantine.  Kept entities are held as the JSON bytes that were sent
(~700 bytes a usage row).

``GET /__stats`` answers the counts: hourly entities received (and dropped) per table, entities kept
per table, requests, transactions and operations, and the sink's own peak RSS and CPU seconds.

Run it with :class:`TableSinkProcess` (a child process, so its memory is not the bench's), or
``python -m bench.table_sink [--port N]`` (prints ``listening on <port>``).
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import re
import resource
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

ACCOUNT = "devstoreaccount1"
PAGE = 1000  # entities per query response, the service's maximum
MAX_OPERATIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
HOURLY_PREFIX = "h|"
USAGE_SUFFIX = "usage"
JSON_TYPE = "application/json;odata=minimalmetadata;streaming=true;charset=utf-8"
# Types the service annotates in minimal metadata (the rest are told apart by their JSON value).
ANNOTATED = frozenset({"Edm.Int64", "Edm.DateTime", "Edm.Binary", "Edm.Guid"})
MESSAGES = {
    "ResourceNotFound": "The specified resource does not exist.",
    "TableNotFound": "The table specified does not exist.",
    "TableAlreadyExists": "The table specified already exists.",
    "EntityAlreadyExists": "The specified entity already exists.",
    "UpdateConditionNotSatisfied": "The update condition specified in the request was not satisfied.",
    "InvalidInput": "One of the request inputs is not valid.",
    "InvalidDuplicateRow": "The batch request contains multiple changes with same row key.",
    "CommandsInBatchActedOnDifferentPartitions": "All commands in a batch must operate on same entity group.",
    "RequestBodyTooLarge": "The request body is too large and exceeds the maximum permissible limit.",
    "NotImplemented": "The requested operation is not implemented by this bench stand-in.",
}
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found",
           409: "Conflict", 412: "Precondition Failed", 413: "Request Entity Too Large", 501: "Not Implemented"}


class ServiceError(Exception):
    """An answer the service gives as an ``odata.error``: HTTP status and error code."""

    def __init__(self, status: int, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail or MESSAGES.get(code, '')}")
        self.status, self.code, self.detail = status, code, detail or MESSAGES.get(code, code)


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"odata.error": {"code": code, "message": {"lang": "en-US", "value": message}}}).encode()


# -- filters -----------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""\s*(?:
    (?P<paren>[()])
  | (?P<typed>(?:datetime|guid|X|binary)'(?:[^']|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?[LlDdFfMm]?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
)""", re.VERBOSE)
COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
Node = tuple[Any, ...]  # ("or"|"and", a, b), ("not", a), ("cmp", op, property, literal)
Bounds = tuple[str | None, bool, str | None, bool]  # low, low inclusive, high, high inclusive
UNBOUNDED: Bounds = (None, True, None, True)


def tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return out
        found = _TOKEN.match(text, at)
        if found is None or found.lastgroup is None:
            raise ServiceError(400, "InvalidInput", f"filter: cannot read {text[at:at + 30]!r}")
        out.append((found.lastgroup, found.group(found.lastgroup)))
        at = found.end()


def _unquoted(literal: str) -> str:
    return literal[literal.index("'") + 1:-1].replace("''", "'")


def _literal(kind: str, text: str) -> Any:
    if kind == "string":
        return _unquoted(text)
    if kind == "number":
        plain = text.rstrip("LlDdFfMm")
        return float(plain) if any(c in plain for c in ".eE") or text[-1] in "DdFfMm" else int(plain)
    if kind == "typed":
        prefix, value = text[:text.index("'")], _unquoted(text)
        if prefix == "datetime":
            return _datetime(value)
        if prefix == "guid":
            return uuid.UUID(value)
        return bytes.fromhex(value)
    if text in ("true", "false"):
        return text == "true"
    raise ServiceError(400, "InvalidInput", f"filter: {text!r} is not a value")


class FilterParser:
    """``or`` < ``and`` < ``not`` < comparison, the OData precedence; property on the left."""

    def __init__(self, text: str) -> None:
        self.items = tokens(text)
        self.at = 0

    def parse(self) -> Node:
        node = self._or()
        if self.at != len(self.items):
            raise ServiceError(400, "InvalidInput", f"filter: unexpected {self.items[self.at][1]!r}")
        return node

    def _peek(self) -> str | None:
        return self.items[self.at][1] if self.at < len(self.items) else None

    def _take(self) -> tuple[str, str]:
        if self.at >= len(self.items):
            raise ServiceError(400, "InvalidInput", "filter: ends too early")
        self.at += 1
        return self.items[self.at - 1]

    def _or(self) -> Node:
        node = self._and()
        while self._peek() == "or":
            self._take()
            node = ("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._peek() == "and":
            self._take()
            node = ("and", node, self._not())
        return node

    def _not(self) -> Node:
        if self._peek() == "not":
            self._take()
            return ("not", self._not())
        return self._primary()

    def _primary(self) -> Node:
        kind, text = self._take()
        if text == "(":
            node = self._or()
            if self._take()[1] != ")":
                raise ServiceError(400, "InvalidInput", "filter: ')' expected")
            return node
        if kind != "word" or text in COMPARISONS or text in ("and", "or", "true", "false"):
            raise ServiceError(400, "InvalidInput", f"filter: a property name expected, not {text!r}")
        _, op = self._take()
        if op not in COMPARISONS:
            raise ServiceError(400, "InvalidInput", f"filter: a comparison expected after {text}, not {op!r}")
        value_kind, value = self._take()
        return ("cmp", op, text, _literal(value_kind, value))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b), "ne": lambda a, b: bool(a != b), "gt": lambda a, b: bool(a > b),
    "ge": lambda a, b: bool(a >= b), "lt": lambda a, b: bool(a < b), "le": lambda a, b: bool(a <= b)}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def matches(node: Node, entity: dict[str, Any]) -> bool:
    """``node`` over typed values; a missing property or values of different types compare false."""
    head = node[0]
    if head == "and":
        return matches(node[1], entity) and matches(node[2], entity)
    if head == "or":
        return matches(node[1], entity) or matches(node[2], entity)
    if head == "not":
        return not matches(node[1], entity)
    _, op, name, literal = node
    if name not in entity:
        return False
    value = entity[name]
    if _kind(value) != _kind(literal) or (_kind(value) == "bool" and op not in ("eq", "ne")):
        return False
    return _COMPARE[op](value, literal)


def properties_named(node: Node) -> set[str]:
    if node[0] == "cmp":
        return {node[2]}
    return set().union(*(properties_named(child) for child in node[1:]))


def key_bounds(node: Node, key: str) -> Bounds:
    """The range of ``key`` (PartitionKey or RowKey) outside which ``node`` is false (a hull:
    the filter itself is still applied to every entity inside)."""
    head = node[0]
    if head == "cmp":
        _, op, name, literal = node
        if name != key or not isinstance(literal, str):
            return UNBOUNDED
        return {"eq": (literal, True, literal, True), "ge": (literal, True, None, True),
                "gt": (literal, False, None, True), "le": (None, True, literal, True),
                "lt": (None, True, literal, False)}.get(op, UNBOUNDED)
    if head == "and":
        return _intersect(key_bounds(node[1], key), key_bounds(node[2], key))
    if head == "or":
        return _hull(key_bounds(node[1], key), key_bounds(node[2], key))
    return UNBOUNDED


def _intersect(a: Bounds, b: Bounds) -> Bounds:
    low, low_in = a[0], a[1]
    if b[0] is not None and (low is None or b[0] > low or (b[0] == low and not b[1])):
        low, low_in = b[0], b[1]
    high, high_in = a[2], a[3]
    if b[2] is not None and (high is None or b[2] < high or (b[2] == high and not b[3])):
        high, high_in = b[2], b[3]
    return low, low_in, high, high_in


def _hull(a: Bounds, b: Bounds) -> Bounds:
    if a[0] is None or b[0] is None:
        low: str | None = None
        low_in = True
    else:
        low, low_in = min((a[0], not a[1]), (b[0], not b[1]))
        low_in = not low_in
    if a[2] is None or b[2] is None:
        return low, low_in, None, True
    high, high_in = max((a[2], a[3]), (b[2], b[3]))
    return low, low_in, high, high_in


def _slice(ordered: list[str], bounds: Bounds, start: str | None = None) -> Iterator[str]:
    """The keys of sorted ``ordered`` within ``bounds``, from ``start`` (inclusive) on."""
    low, low_in, high, high_in = bounds
    at = 0
    if low is not None:
        at = (bisect.bisect_left if low_in else bisect.bisect_right)(ordered, low)
    if start is not None:
        at = max(at, bisect.bisect_left(ordered, start))
    for index in range(at, len(ordered)):
        key = ordered[index]
        if high is not None and (key > high or (key == high and not high_in)):
            return
        yield key


# -- values ------------------------------------------------------------------------------------------
def _datetime(text: str) -> datetime:
    head, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(head).replace(tzinfo=UTC)
    return moment.replace(microsecond=int(fraction[:6].ljust(6, "0"))) if fraction else moment


def typed(document: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON -> the values filters compare (Int64 as int, DateTime as datetime, ...)."""
    out: dict[str, Any] = {}
    for name, value in document.items():
        if name.endswith("@odata.type"):
            continue
        edm = document.get(f"{name}@odata.type")
        if edm == "Edm.Int64":
            value = int(value)
        elif edm == "Edm.DateTime":
            value = _datetime(value)
        elif edm == "Edm.Double":
            value = float(value)
        elif edm == "Edm.Guid":
            value = uuid.UUID(value)
        elif edm == "Edm.Binary":
            value = base64.b64decode(value)
        out[name] = value
    return out


# -- storage -----------------------------------------------------------------------------------------
@dataclass(slots=True)
class Stored:
    body: bytes  # the entity's JSON as it was sent (keys and annotations included)
    timestamp: str

    @property
    def etag(self) -> str:
        return f"W/\"datetime'{quote(self.timestamp, safe='')}'\""


@dataclass
class Table:
    """One table: partitions of row key -> entity, key orders sorted when a read needs them."""

    name: str
    drops_hourly: bool
    partitions: dict[str, dict[str, Stored]] = field(default_factory=dict)
    hourly_received: int = 0
    _partition_order: list[str] | None = None
    _row_orders: dict[str, list[str]] = field(default_factory=dict)

    def get(self, partition: str, row: str) -> Stored | None:
        rows = self.partitions.get(partition)
        return None if rows is None else rows.get(row)

    def put(self, partition: str, row: str, stored: Stored) -> None:
        rows = self.partitions.get(partition)
        if rows is None:
            rows = self.partitions[partition] = {}
            self._partition_order = None
        if row not in rows:
            self._row_orders.pop(partition, None)
        rows[row] = stored

    def delete(self, partition: str, row: str) -> None:
        del self.partitions[partition][row]
        self._row_orders.pop(partition, None)

    def count(self) -> int:
        return sum(len(rows) for rows in self.partitions.values())

    def keys(self, partitions: Bounds, rows: Bounds, start: tuple[str, str | None] | None) -> Iterator[tuple[str, str]]:
        """Every (PartitionKey, RowKey) within the bounds, in key order, from ``start`` on."""
        if self._partition_order is None:
            self._partition_order = sorted(self.partitions)
        for partition in _slice(self._partition_order, partitions, start[0] if start else None):
            order = self._row_orders.get(partition)
            if order is None:
                order = self._row_orders[partition] = sorted(self.partitions[partition])
            first = start[1] if start is not None and partition == start[0] else None
            for row in _slice(order, rows, first):
                yield partition, row


class Clock:
    """Entity timestamps (7 decimals, as the service), strictly increasing so every ETag is new."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        ticks = max(time.time_ns() // 100, self._last + 1)
        self._last = ticks
        seconds, fraction = divmod(ticks, 10_000_000)
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:07d}Z"


@dataclass
class Operation:
    """One entity operation of a request or a transaction."""

    method: str
    table: str
    partition: str
    row: str
    body: bytes
    if_match: str | None


class Store:
    def __init__(self, usage_suffix: str = USAGE_SUFFIX) -> None:
        self.tables: dict[str, Table] = {}
        self.usage_suffix = usage_suffix
        self.lock = threading.Lock()
        self.clock = Clock()
        self.requests = self.transactions = self.operations = 0

    def table(self, name: str) -> Table:
        found = self.tables.get(name)
        if found is None:
            raise ServiceError(404, "TableNotFound")
        return found

    def create_table(self, name: str) -> None:
        if name in self.tables:
            raise ServiceError(409, "TableAlreadyExists")
        self.tables[name] = Table(name, drops_hourly=name.endswith(self.usage_suffix))

    def check(self, op: Operation) -> None:
        """Raise what the service would answer ``op`` without changing anything."""
        table = self.table(op.table)
        if table.drops_hourly and op.row.startswith(HOURLY_PREFIX) and op.method in ("PUT", "POST"):
            return  # dropped rows are never read: written unconditionally
        current = table.get(op.partition, op.row)
        if op.method == "POST" and current is not None:
            raise ServiceError(409, "EntityAlreadyExists")
        if op.method in ("DELETE", "MERGE", "PUT") and op.if_match is not None:
            if current is None:
                raise ServiceError(404, "ResourceNotFound")
            if op.if_match != "*" and op.if_match != current.etag:
                raise ServiceError(412, "UpdateConditionNotSatisfied")
        if op.method == "DELETE" and op.if_match is None:
            raise ServiceError(400, "InvalidInput", "a delete needs If-Match")

    def apply(self, op: Operation, timestamp: str) -> Stored | None:
        """``op`` (checked before), stamped ``timestamp``; the stored entity (``None``: deleted or dropped)."""
        table = self.tables[op.table]
        self.operations += 1
        if op.method == "DELETE":
            table.delete(op.partition, op.row)
            return None
        if table.drops_hourly and op.row.startswith(HOURLY_PREFIX):
            table.hourly_received += 1
            return None
        body = op.body
        current = table.get(op.partition, op.row)
        if op.method == "MERGE" and current is not None:
            body = json.dumps({**json.loads(current.body), **json.loads(op.body)}).encode()
        stored = Stored(body, timestamp)
        table.put(op.partition, op.row, stored)
        return stored

    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with self.lock:
            return {
                "hourly_received": sum(table.hourly_received for table in self.tables.values()),
                "hourly_received_by_table": {t.name: t.hourly_received for t in self.tables.values() if t.drops_hourly},
                "kept_by_table": {name: table.count() for name, table in sorted(self.tables.items())},
                "requests": self.requests, "transactions": self.transactions, "operations": self.operations,
                "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            }


def entity_document(partition: str, row: str, stored: Stored, select: list[str] | None) -> dict[str, Any]:
    """The entity as a minimal-metadata response shows it (``odata.etag``, Timestamp, annotations)."""
    sent = json.loads(stored.body)
    out: dict[str, Any] = {"odata.etag": stored.etag, "PartitionKey": partition, "RowKey": row,
                           "Timestamp@odata.type": "Edm.DateTime", "Timestamp": stored.timestamp}
    for name, value in sent.items():
        if name.endswith("@odata.type") or name in ("PartitionKey", "RowKey", "Timestamp"):
            continue
        edm = sent.get(f"{name}@odata.type")
        if edm in ANNOTATED or (edm == "Edm.Double" and isinstance(value, str)):
            out[f"{name}@odata.type"] = edm
        out[name] = value
    if select is None:
        return out
    wanted = set(select)
    return {name: value for name, value in out.items()
            if name == "odata.etag" or name.split("@", 1)[0] in wanted}


# -- the protocol --------------------------------------------------------------------------------------
_KEYS = re.compile(r"\APartitionKey='((?:[^']|'')*)',RowKey='((?:[^']|'')*)'\Z")
_RESOURCE = re.compile(r"\A/([A-Za-z0-9$]+)(?:\((.*)\))?\Z", re.DOTALL)


def resource_of(path: str) -> tuple[str, str | None]:
    """``/devstoreaccount1/t(PartitionKey='a',RowKey='b')`` -> (``t``, the parenthesized part)."""
    path = unquote(path)
    if path.startswith(f"/{ACCOUNT}/"):
        path = path[len(ACCOUNT) + 1:]
    found = _RESOURCE.match(path)
    if found is None:
        raise ServiceError(400, "InvalidInput", f"unknown resource {path!r}")
    return found.group(1), found.group(2)


def entity_keys(inside: str) -> tuple[str, str]:
    found = _KEYS.match(inside)
    if found is None:
        raise ServiceError(400, "InvalidInput", f"entity keys expected, not {inside!r}")
    return found.group(1).replace("''", "'"), found.group(2).replace("''", "'")


def query_parameters(query: str) -> dict[str, str]:
    """Percent-decoded, ``+`` left as it is (the SDK and ``table_query`` encode every value)."""
    out = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            out[unquote(name)] = unquote(value)
    return out


def continuation(key: str) -> str:
    encoded = base64.urlsafe_b64encode(key.encode("utf-8", "surrogatepass")).decode("ascii")
    return f"1!{len(encoded)}!{encoded}"


def from_continuation(token: str) -> str:
    return base64.urlsafe_b64decode(token.split("!", 2)[-1]).decode("utf-8", "surrogatepass")


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def run_query(store: Store, table_name: str, parameters: dict[str, str]) -> Answer:
    text = parameters.get("$filter")
    node = FilterParser(text).parse() if text else None
    select = parameters["$select"].split(",") if parameters.get("$select") else None
    top = min(int(parameters.get("$top") or PAGE), PAGE)
    start = None
    if "NextPartitionKey" in parameters:
        row = parameters.get("NextRowKey")
        start = (from_continuation(parameters["NextPartitionKey"]), from_continuation(row) if row else None)
    found: list[dict[str, Any]] = []
    following: tuple[str, str] | None = None
    with store.lock:
        table = store.table(table_name)
        partitions = key_bounds(node, "PartitionKey") if node else UNBOUNDED
        rows = key_bounds(node, "RowKey") if node else UNBOUNDED
        keys_only = node is None or properties_named(node) <= {"PartitionKey", "RowKey"}
        for partition, row in table.keys(partitions, rows, start):
            if len(found) == top:
                following = (partition, row)  # the next candidate: the service's continuation too
                break
            stored = table.partitions[partition][row]
            if node is not None:
                values = ({"PartitionKey": partition, "RowKey": row} if keys_only
                          else {**typed(json.loads(stored.body)), "PartitionKey": partition, "RowKey": row})
                if not matches(node, values):
                    continue
            found.append(entity_document(partition, row, stored, select))
    headers = {"Content-Type": JSON_TYPE}
    if following is not None:
        headers["x-ms-continuation-NextPartitionKey"] = continuation(following[0])
        headers["x-ms-continuation-NextRowKey"] = continuation(following[1])
    metadata = f"http://127.0.0.1/{ACCOUNT}/$metadata#{table_name}"
    return Answer(200, json.dumps({"odata.metadata": metadata, "value": found}).encode(), headers)


def single(store: Store, op: Operation, prefer: str) -> Answer:
    """One entity operation outside a transaction."""
    with store.lock:
        store.check(op)
        stored = store.apply(op, store.clock.next())
    headers = {"ETag": stored.etag} if stored is not None else {}
    if op.method == "POST" and stored is not None and "return-no-content" not in prefer:
        document = entity_document(op.partition, op.row, stored, None)
        return Answer(201, json.dumps(document).encode(), {**headers, "Content-Type": JSON_TYPE})
    if op.method == "POST":
        headers["Preference-Applied"] = "return-no-content"
    return Answer(204, b"", headers)


def operation_of(method: str, path: str, body: bytes, if_match: str | None) -> Operation:
    name, inside = resource_of(path)
    if method == "POST":
        document = json.loads(body)
        return Operation(method, name, str(document["PartitionKey"]), str(document["RowKey"]), body, if_match)
    if inside is None:
        raise ServiceError(400, "InvalidInput", "entity keys expected")
    partition, row = entity_keys(inside)
    if method in ("PUT", "MERGE"):
        json.loads(body)  # refused when it is not JSON, as the service does
    return Operation(method, name, partition, row, body, if_match)


_BOUNDARY = re.compile(rb"boundary=([^\r\n;]+)")
_HEADER_LINE = re.compile(rb"^([A-Za-z-]+):\s*(.*?)\r?$", re.MULTILINE)


def transaction_operations(body: bytes) -> list[Operation]:
    """The operations of a ``$batch`` body's one changeset (what ``table_batch`` and the SDK send)."""
    found = _BOUNDARY.search(body)
    if found is None:
        raise ServiceError(400, "InvalidInput", "no changeset in the batch")
    parts = body.split(b"--" + found.group(1).strip())
    operations = []
    for part in parts[1:-1]:  # the first is the batch part's head, the last the closing "--"
        _, _, request = part.partition(b"\r\n\r\n")  # past the part's MIME headers
        line, _, rest = request.partition(b"\r\n")
        head, _, content = rest.partition(b"\r\n\r\n")
        headers = {name.lower(): value for name, value in _HEADER_LINE.findall(head)}
        method, url, _ = line.decode("ascii").split(" ", 2)
        length = headers.get(b"content-length")
        content = content[:int(length)] if length is not None else content.rstrip(b"\r\n")
        if_match = headers.get(b"if-match")
        operations.append(operation_of(method, urlsplit(url).path, content,
                                       if_match.decode("latin-1") if if_match else None))
    return operations


def run_transaction(store: Store, body: bytes) -> Answer:
    if len(body) > MAX_TRANSACTION_BYTES:
        raise ServiceError(413, "RequestBodyTooLarge")
    operations = transaction_operations(body)
    if not operations or len(operations) > MAX_OPERATIONS:
        raise ServiceError(400, "InvalidInput", f"{len(operations)} operations in a changeset (1 to 100)")
    if len({(op.table, op.partition) for op in operations}) != 1:
        raise ServiceError(400, "CommandsInBatchActedOnDifferentPartitions")
    results: list[tuple[int, Stored | None]] = []
    failure: tuple[int, ServiceError] | None = None
    with store.lock:
        store.transactions += 1
        if len({op.row for op in operations}) != len(operations):
            failure = (0, ServiceError(400, "InvalidDuplicateRow"))
        for index, op in enumerate(operations):
            if failure is not None:
                break
            try:
                store.check(op)
            except ServiceError as exc:
                failure = (index, exc)
        if failure is None:  # all or nothing: every operation passed its check
            timestamp = store.clock.next()
            results = [(index, store.apply(op, timestamp)) for index, op in enumerate(operations)]
    return Answer(202, *transaction_answer(operations, results, failure))


def transaction_answer(operations: list[Operation], results: list[tuple[int, Stored | None]],
                       failure: tuple[int, ServiceError] | None) -> tuple[bytes, dict[str, str]]:
    batch, changeset = f"batchresponse_{uuid.uuid4()}", f"changesetresponse_{uuid.uuid4()}"
    parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"]
    common = "X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\nDataServiceVersion: 3.0;\r\n"
    if failure is not None:
        index, error = failure
        message = f"{index}:{error.detail}"
        parts.append(f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                     f"HTTP/1.1 {error.status} {REASONS.get(error.status, '')}\r\nContent-ID: {index}\r\n{common}"
                     f"Content-Type: {JSON_TYPE}\r\n\r\n{error_body(error.code, message).decode()}\r\n")
    else:
        for index, stored in results:
            etag = f"ETag: {stored.etag}\r\n" if stored is not None else ""
            parts.append(f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
                         f"\r\nHTTP/1.1 204 No Content\r\nContent-ID: {index}\r\n{common}"
                         f"Preference-Applied: return-no-content\r\n{etag}\r\n")
    parts.append(f"--{changeset}--\r\n--{batch}--\r\n")
    return "".join(parts).encode(), {"Content-Type": f"multipart/mixed; boundary={batch}"}


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0, usage_suffix: str = USAGE_SUFFIX) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.store = Store(usage_suffix)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: SinkServer
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK's connection pool reuses connections
    # Head and body in one segment, sent at once: unbuffered, two small writes meet the client's
    # delayed ACK (~40 ms a request).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_MERGE(self) -> None:
        self._serve("MERGE")

    def do_PATCH(self) -> None:
        self._serve("MERGE")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            answer = self._answer(method, body)
        except ServiceError as exc:
            answer = Answer(exc.status, error_body(exc.code, exc.detail),
                            {"Content-Type": JSON_TYPE, "x-ms-error-code": exc.code})
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            answer = Answer(400, error_body("InvalidInput", f"{type(exc).__name__}: {exc}"),
                            {"Content-Type": JSON_TYPE, "x-ms-error-code": "InvalidInput"})
        self.send_response(answer.status, REASONS.get(answer.status))
        headers = {"x-ms-request-id": str(uuid.uuid4()), "x-ms-version": "2019-02-02",
                   "DataServiceVersion": "3.0;", "Content-Length": str(len(answer.body)), **answer.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if answer.body:
            self.wfile.write(answer.body)

    def _answer(self, method: str, body: bytes) -> Answer:
        store = self.server.store
        path, _, query = self.path.partition("?")
        if path == "/__stats":
            return Answer(200, json.dumps(store.stats()).encode(), {"Content-Type": "application/json"})
        with store.lock:
            store.requests += 1
        if path == f"/{ACCOUNT}/$batch" and method == "POST":
            return run_transaction(store, body)
        name, inside = resource_of(path)
        if name == "Tables":
            return self._tables(method, inside, body)
        if method == "GET" and inside == "":
            return run_query(store, name, query_parameters(query))
        if method == "GET" and inside is not None:
            partition, row = entity_keys(inside)
            with store.lock:
                stored = store.table(name).get(partition, row)
                if stored is None:
                    raise ServiceError(404, "ResourceNotFound")
            select = query_parameters(query).get("$select")
            document = entity_document(partition, row, stored, select.split(",") if select else None)
            document["odata.metadata"] = f"http://127.0.0.1/{ACCOUNT}/$metadata#{name}/@Element"
            return Answer(200, json.dumps(document).encode(), {"Content-Type": JSON_TYPE, "ETag": stored.etag})
        if method in ("POST", "PUT", "MERGE", "DELETE"):
            return single(store, operation_of(method, path, body, self.headers.get("If-Match")),
                          self.headers.get("Prefer") or "")
        raise ServiceError(501, "NotImplemented")

    def _tables(self, method: str, inside: str | None, body: bytes) -> Answer:
        store = self.server.store
        if method == "POST":
            name = str(json.loads(body)["TableName"])
            with store.lock:
                store.create_table(name)
            if "return-no-content" in (self.headers.get("Prefer") or ""):
                return Answer(204, b"", {"Preference-Applied": "return-no-content"})
            return Answer(201, json.dumps({"odata.metadata": f"http://127.0.0.1/{ACCOUNT}/$metadata#Tables/@Element",
                                           "TableName": name}).encode(), {"Content-Type": JSON_TYPE})
        if method == "GET":
            with store.lock:
                names = sorted(store.tables)
            return Answer(200, json.dumps({"odata.metadata": f"http://127.0.0.1/{ACCOUNT}/$metadata#Tables",
                                           "value": [{"TableName": n} for n in names]}).encode(),
                          {"Content-Type": JSON_TYPE})
        if method == "DELETE" and inside:
            name = inside.strip("'").replace("''", "'")
            with store.lock:
                store.table(name)
                del store.tables[name]
            return Answer(204)
        raise ServiceError(501, "NotImplemented")


# -- a child process ------------------------------------------------------------------------------------
class TableSinkProcess:
    """The sink in a child process (its memory apart from the caller's), on a free loopback port."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> TableSinkProcess:
        root = Path(__file__).resolve().parents[1]
        self._process = subprocess.Popen([sys.executable, "-m", "bench.table_sink"], cwd=root,
                                         stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("listening on "):
            self.__exit__()
            raise RuntimeError(f"the table sink did not start (it said {line!r})")
        self.port = int(line.split()[-1])
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None

    @property
    def connection_string(self) -> str:
        from shared.adapters.azurite import connection_string

        return connection_string(self.port)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/__stats", timeout=30) as response:
            stats: dict[str, Any] = json.loads(response.read())
        return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.table_sink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = SinkServer(args.port)
    print(f"listening on {server.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
