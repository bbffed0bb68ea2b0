"""Entity queries (Table Storage ``GET <table>()?$filter=``) read without the SDK's generic
deserializer.

azure-data-tables walks every returned property through its msrest-style deserializer and parses
each datetime with ``strptime``: ~0.13 ms of Python per usage row, most of a one-subscription
report and 10x the service's own work on a 1,500-row one (bench 5, README Performance).  This
module sends the same request through the table client's own pipeline (authentication, retries)
and converts the ``minimalmetadata`` JSON itself, following the continuation headers.

Filters take values only as parameters (``@name`` words, as the SDK's ``parameters=``): strings
only, quoted as OData literals; nothing else is formatted into filter text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from shared.adapters.table_rest import PROTOCOL_HEADERS, endpoints, error_text, send
from shared.errors import StorageError


def bind(query_filter: str, parameters: Mapping[str, str]) -> str:
    """``query_filter`` with each ``@name`` word replaced by the OData string literal of its value."""
    words = query_filter.split(" ")
    for index, word in enumerate(words):
        if word.startswith("@"):
            value = parameters[word[1:]]
            if not isinstance(value, str):
                raise TypeError(f"filter parameter {word}: only strings are bound here, got {type(value).__name__}")
            words[index] = "'" + value.replace("'", "''") + "'"
    return " ".join(words)


def query(table: Any, query_filter: str, parameters: Mapping[str, str],
          select: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """The entities of ``table`` matching the filter, page after page, with typed values
    (Int64 as int, DateTime as aware UTC datetime), as the SDK returns them, minus its wrappers."""
    from azure.core.rest import HttpRequest

    _, table_url, sas = endpoints(table)
    params = {"$filter": bind(query_filter, parameters)}
    if select:
        params["$select"] = ",".join(select)
    headers = {**PROTOCOL_HEADERS, "Accept": "application/json;odata=minimalmetadata"}
    dates: dict[str, datetime] = {}  # a report repeats few period starts: parse each once
    plans: dict[tuple[str, ...], Plan] = {}
    while True:
        # Every value percent-encoded here: azure-core's params= would put them in the URL as they
        # are, and the service decodes %27 back into a quote.
        encoded = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
        target = f"{table_url}()?{sas + '&' if sas else ''}{encoded}"
        response = send(table, HttpRequest("GET", target, headers=headers))
        body: bytes = response.read()
        if response.status_code != 200:
            raise StorageError(f"query refused with HTTP {response.status_code}: {error_text(body)}")
        for raw in json.loads(body)["value"]:
            yield _entity(raw, dates, plans)
        next_partition = response.headers.get("x-ms-continuation-NextPartitionKey")
        if not next_partition:
            return
        params["NextPartitionKey"] = next_partition
        next_row = response.headers.get("x-ms-continuation-NextRowKey")
        if next_row:
            params["NextRowKey"] = next_row
        else:
            params.pop("NextRowKey", None)


Continuation = tuple[str, str | None]  # (x-ms-continuation-NextPartitionKey, ...-NextRowKey)


def query_pages(table: Any, query_filter: str, parameters: Mapping[str, str], select: Sequence[str] | None = None,
                resume: Continuation | None = None,
                ) -> Iterator[tuple[Continuation | None, list[dict[str, Any]], Continuation | None]]:
    """:func:`query` one response page at a time, starting at ``resume`` (a continuation this
    function returned earlier for the same filter): ``(continuation it was fetched with, entities,
    continuation of the next page or None)``.  A caller can stop after any page and come back later
    from either continuation (the usage report's page tokens carry one)."""
    from azure.core.rest import HttpRequest

    _, table_url, sas = endpoints(table)
    headers = {**PROTOCOL_HEADERS, "Accept": "application/json;odata=minimalmetadata"}
    params = {"$filter": bind(query_filter, parameters)}
    if select:
        params["$select"] = ",".join(select)
    dates: dict[str, datetime] = {}
    plans: dict[tuple[str, ...], Plan] = {}
    current = resume
    while True:
        paged = dict(params)
        if current is not None:
            paged["NextPartitionKey"] = current[0]
            if current[1]:
                paged["NextRowKey"] = current[1]
        encoded = "&".join(f"{name}={quote(value, safe='')}" for name, value in paged.items())
        response = send(table, HttpRequest("GET", f"{table_url}()?{sas + '&' if sas else ''}{encoded}",
                                           headers=headers))
        body: bytes = response.read()
        if response.status_code != 200:
            raise StorageError(f"query refused with HTTP {response.status_code}: {error_text(body)}")
        entities = [_entity(raw, dates, plans) for raw in json.loads(body)["value"]]
        next_partition = response.headers.get("x-ms-continuation-NextPartitionKey")
        following = (next_partition, response.headers.get("x-ms-continuation-NextRowKey")) if next_partition else None
        yield current, entities, following
        if following is None:
            return
        current = following


Plan = list[tuple[str, Callable[[Any], Any] | None]]


def _entity(raw: Mapping[str, Any], dates: dict[str, datetime], plans: dict[tuple[str, ...], Plan]) -> dict[str, Any]:
    """One entity's properties with typed values; the conversion is planned once per set of
    property names (the entities of a table mostly share one)."""
    shape = tuple(raw)
    plan = plans.get(shape)
    if plan is None:
        plan = plans[shape] = _plan(raw, dates)
    return {name: raw[name] if convert is None or raw[name] is None else convert(raw[name])
            for name, convert in plan}


def _plan(raw: Mapping[str, Any], dates: dict[str, datetime]) -> Plan:
    def to_datetime(text: str) -> datetime:
        return dates[text] if text in dates else dates.setdefault(text, _datetime(text))

    converters: dict[str, Callable[[Any], Any]] = {
        "Edm.Int64": int, "Edm.DateTime": to_datetime, "Edm.Double": float,  # float() takes "NaN" too
        "Edm.Binary": base64.b64decode}
    return [(name, converters.get(raw.get(f"{name}@odata.type", "")))  # String, Guid, Boolean, Int32: as is
            for name in raw
            # metadata, kept out of the entity as the SDK does
            if not (name.startswith("odata.") or name.endswith("@odata.type") or name == "Timestamp")]


def _datetime(text: str) -> datetime:
    """``2026-03-01T00:00:00.0000000Z`` (the service keeps 7 decimals; Python 6) -> aware UTC."""
    head, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(head)
    if fraction:
        moment = moment.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    return moment.replace(tzinfo=UTC)
