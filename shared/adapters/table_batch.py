"""Entity-group transactions (Table Storage ``$batch``) of replace-upserts, built without the SDK's
multipart machinery.

azure-data-tables builds and parses every transaction through the ``email`` package: about 0.4 ms
of Python per entity, five times the work Azurite does to store it, and the bound of every rollup
write (bench 4, README Performance).  This module writes the same bytes directly (the OData
``multipart/mixed`` batch of one changeset, as the SDK sends it: same part headers, same JSON with
the SDK's separators and ASCII escapes, so U+2028 or a lone surrogate travels as ``\\u2028``) and
reads back only the status lines.  The request still goes through the table client's own pipeline
(:mod:`shared.adapters.table_rest`), so authentication (shared key or managed identity), retries
and the user agent stay the SDK's.  ``tests/unit/test_table_format.py`` compares the bytes
with what the SDK's own transaction sends, for a corpus of hostile values.

An answer that is neither the multipart ``202`` of a transaction nor the service's own refusal
(a proxy's page, a ``200``, an unknown error shape) is not guessed at: the same transaction is sent
once through the SDK's ``submit_transaction``, and that is logged.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from json.encoder import encode_basestring_ascii
from typing import Any
from urllib.parse import quote

from shared.adapters.table_rest import PROTOCOL_HEADERS, endpoints, error_text, send
from shared.errors import TransactionRejectedError

log = logging.getLogger(__name__)
INT32 = range(-(2**31), 2**31)
INT64 = range(-(2**63), 2**63)
MAX_OPERATIONS = 100
# The service takes at most 4 MiB per transaction; the boundaries and part headers (~300 bytes an
# operation) are counted in OPERATION_OVERHEAD, this margin covers the rest.
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024 - 64 * 1024
OPERATION_OVERHEAD = 400
_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})[^\r\n]*", re.MULTILINE)
_EDM = ("Edm.Binary", "Edm.Boolean", "Edm.DateTime", "Edm.Double", "Edm.Guid", "Edm.Int32", "Edm.Int64",
        "Edm.String")
_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# quote(text, safe="") keeps these; any other ASCII character becomes %XX (upper-case hex).
_URL_RESERVED = re.compile(r"[^A-Za-z0-9_.~-]")
_PERCENT_ENCODED = {chr(code): f"%{code:02X}" for code in range(128)}
# Texts reused from one entity to the next: each property name's JSON ('"Name": ' and
# ', "Name@odata.type": '), each UTC datetime's Edm.DateTime text (a run writes the same few hours,
# days and months for every subscription) and each key's URL text (a transaction's one PartitionKey,
# the usage RowKeys every subscription shares).  Emptied when full: any entity shape is safe.
_CACHE_LIMIT = 4096
_PROPERTY_TEXT: dict[str, tuple[str, str]] = {}
_UTC_TEXT: dict[datetime, str] = {}
_KEY_TEXT: dict[str, str] = {}


def entity_json(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of one entity, typed as azure-data-tables types it (``@odata.type``)."""
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue  # Table Storage has no null: the property is left out
        if isinstance(value, tuple) and value and value[0] is None:
            continue  # EntityProperty(None, ...): left out, as the SDK does
        edm, plain = _typed(name, value)
        out[name] = plain
        if edm:
            out[f"{name}@odata.type"] = edm
    return out


def _typed(name: str, value: Any) -> tuple[str | None, Any]:
    edm_type = getattr(value, "edm_type", None)
    if edm_type is not None:  # EntityProperty(value, EdmType.X)
        return _explicit(name, value.value, str(getattr(edm_type, "value", edm_type)))
    if isinstance(value, bool):
        return None, value
    if isinstance(value, int):
        # As the SDK: a plain int is Int32, larger ones must say Int64.  Compared, not `in INT32`: a
        # range tests an int subclass (an IntEnum) by walking all 2**32 values.
        if not INT32.start <= value < INT32.stop:
            raise TypeError(f"property {name}: {value} does not fit Int32; wrap it as Int64")
        return None, value
    if isinstance(value, float):
        return "Edm.Double", _double(value)
    if isinstance(value, str):
        return "Edm.String", value
    if isinstance(value, datetime):
        return "Edm.DateTime", _datetime(name, value)
    if isinstance(value, bytes):
        return "Edm.Binary", base64.b64encode(value).decode("ascii")
    if isinstance(value, uuid.UUID):
        return "Edm.Guid", str(value)
    raise TypeError(f"property {name}: unsupported type {type(value).__name__}")


def _explicit(name: str, value: Any, edm: str) -> tuple[str | None, Any]:
    """A value with its Edm type given, converted by the SDK's rule for that type."""
    if edm == "Edm.Int64" and type(value) is int and -(2**63) <= value < 2**63:  # every usage counter
        return edm, str(value)
    if edm == "Edm.Int64" and isinstance(value, int | str) and int(value) in INT64:
        return edm, str(value)
    if edm == "Edm.Int32" and isinstance(value, int | str) and int(value) in INT32:
        return edm, int(value)
    if edm == "Edm.Boolean" and isinstance(value, bool):
        return edm, value
    if edm == "Edm.Double" and isinstance(value, float | str):
        return edm, value if isinstance(value, str) else _double(value)
    if edm == "Edm.String" and isinstance(value, str):
        return edm, value
    if edm == "Edm.Guid" and isinstance(value, str | uuid.UUID):
        return edm, str(value)
    if edm == "Edm.Binary" and isinstance(value, bytes | str):
        raw = value.encode("utf-8") if isinstance(value, str) else value
        return edm, base64.b64encode(raw).decode("ascii")
    if edm == "Edm.DateTime" and isinstance(value, str | datetime):
        return edm, value if isinstance(value, str) else _datetime(name, value)
    raise TypeError(f"property {name}: unsupported typed value {value!r} as {edm}")


def _double(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _datetime(name: str, value: datetime) -> str:
    service_text = getattr(value, "tables_service_value", None)  # read back by the SDK: 7 decimals kept
    if service_text:
        return str(service_text)
    if value.tzinfo is None:
        raise TypeError(f"property {name}: naive datetime {value!r} (Table Storage keeps UTC)")
    return value.astimezone(UTC).strftime(_DATETIME_FORMAT)


def entity_body(entity: Mapping[str, Any]) -> bytes:
    """``json.dumps(entity_json(entity))`` as ASCII, byte for byte, written without the typed dict.

    The values usage rows are made of (text, Int32, a UTC datetime, an Int64 counter) are written
    here directly, about five times cheaper than through the dict and ``json.dumps``; any other
    value goes through :func:`entity_json`'s rules and ``json.dumps`` of that one value."""
    from azure.data.tables import EdmType, EntityProperty  # loaded already by the client that sends this

    int64 = EdmType.INT64
    parts: list[str] = []
    for name, value in entity.items():
        named = _PROPERTY_TEXT.get(name)
        if named is None:
            if type(name) is not str:  # json.dumps' own rules for such keys: not worth a second copy
                return json.dumps(entity_json(entity)).encode("ascii")
            named = _property_text(name)
        kind = type(value)
        if kind is EntityProperty:
            number, edm_type = value
            if edm_type is int64 and type(number) is int and -(2**63) <= number < 2**63:
                parts.append(f'{named[0]}"{number}"{named[1]}"Edm.Int64"')
                continue
        elif kind is str:
            parts.append(f'{named[0]}{encode_basestring_ascii(value)}{named[1]}"Edm.String"')
            continue
        elif kind is int and -(2**31) <= value < 2**31:
            parts.append(f"{named[0]}{value}")
            continue
        elif kind is datetime and value.tzinfo is UTC:
            parts.append(f'{named[0]}"{_UTC_TEXT.get(value) or _utc_text(value)}"{named[1]}"Edm.DateTime"')
            continue
        parts.extend(f"{encode_basestring_ascii(key)}: {json.dumps(plain)}"
                     for key, plain in entity_json({name: value}).items())
    return f"{{{', '.join(parts)}}}".encode("ascii")


def _property_text(name: str) -> tuple[str, str]:
    if len(_PROPERTY_TEXT) >= _CACHE_LIMIT:
        _PROPERTY_TEXT.clear()
    text = f"{encode_basestring_ascii(name)}: ", f", {encode_basestring_ascii(name + '@odata.type')}: "
    _PROPERTY_TEXT[name] = text
    return text


def _utc_text(value: datetime) -> str:
    if len(_UTC_TEXT) >= _CACHE_LIMIT:
        _UTC_TEXT.clear()
    # Only datetimes whose tzinfo is UTC itself are kept: two of them are equal only when they are
    # the same instant (in a zone with folds, equal wall times can be different instants).
    text = _UTC_TEXT[value] = value.strftime(_DATETIME_FORMAT)
    return text


def entity_from_json(document: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`entity_json`: Python values an ``entity_json`` gives back unchanged
    (a quarantined entity is kept as its JSON and sent again from it)."""
    from azure.data.tables import EdmType, EntityProperty

    entity: dict[str, Any] = {}
    for name, value in document.items():
        if name.endswith("@odata.type"):
            continue
        edm = document.get(f"{name}@odata.type")
        if edm in (None, "Edm.String"):
            entity[name] = value
        elif edm == "Edm.DateTime":
            entity[name] = EntityProperty(value, EdmType.DATETIME)
        elif edm == "Edm.Double":
            entity[name] = EntityProperty(value, EdmType.DOUBLE)
        elif edm == "Edm.Binary":
            entity[name] = base64.b64decode(value)
        elif edm in _EDM:
            entity[name] = EntityProperty(value, EdmType(edm))
        else:
            raise TypeError(f"property {name}: unknown type {edm}")
    return entity


def _key(value: str) -> str:
    """A key in the request line: quotes doubled (OData), then percent-encoded as ``quote(safe="")``
    does (an ASCII key, nearly all, by one regular expression: a third of quote's cost)."""
    known = _KEY_TEXT.get(value) if type(value) is str else None
    if known is not None:
        return known
    doubled = value.replace("'", "''")
    if doubled.isascii():
        text = _URL_RESERVED.sub(lambda found: _PERCENT_ENCODED[found.group()], doubled)
    else:
        text = quote(doubled, safe="")
    if len(_KEY_TEXT) >= _CACHE_LIMIT:
        _KEY_TEXT.clear()
    _KEY_TEXT[value] = text
    return text


@dataclass(frozen=True)
class Operation:
    """One insert-or-replace, serialized once: its request line and headers, and its JSON body."""

    entity: Mapping[str, Any]
    head: bytes
    body: bytes

    @property
    def size(self) -> int:
        return len(self.head) + len(self.body) + OPERATION_OVERHEAD


_PART_HEADERS = (f"x-ms-version: {PROTOCOL_HEADERS['x-ms-version']}\r\nDataServiceVersion: 3.0\r\n"
                 "Accept: application/json\r\n")


def operation(table_url: str, entity: Mapping[str, Any]) -> Operation:
    # The SDK's own JSON: json.dumps defaults (", " and ": ", ASCII escapes), as azure-core writes it.
    content = entity_body(entity)
    target = f"{table_url}(PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}')"
    head = (f"PUT {target} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {len(content)}\r\n"
            f"{_PART_HEADERS}").encode("ascii")
    return Operation(entity, head, content)


def transaction_body(table_url: str, entities: Sequence[Mapping[str, Any]], batch: str, changeset: str,
                     date: str | None = None) -> bytes:
    """The ``$batch`` body: one changeset of ``PUT`` (insert or replace) per entity."""
    return assemble([operation(table_url, entity) for entity in entities], batch, changeset, date)


def assemble(operations: Sequence[Operation], batch: str, changeset: str, date: str | None = None) -> bytes:
    date = date or formatdate(usegmt=True)
    stamp = f"x-ms-date: {date}\r\nDate: {date}\r\n\r\n".encode("ascii")
    part = f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: "
    parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n".encode("ascii")]
    for index, op in enumerate(operations):
        parts.extend((f"{part}{index}\r\n\r\n".encode("ascii"), op.head, stamp, op.body, b"\r\n"))
    parts.append(f"--{changeset}--\r\n\r\n--{batch}--\r\n".encode("ascii"))
    return b"".join(parts)


def submit_replace(table: Any, entities: Iterable[Mapping[str, Any]]) -> int:
    """Insert-or-replace ``entities`` (one partition, at most 100) as one atomic transaction."""
    _, table_url, _ = endpoints(table) if table is not None else ("", "", "")
    return submit_operations(table, [operation(table_url, entity) for entity in entities])


def submit_operations(table: Any, operations: Sequence[Operation]) -> int:
    """Send prepared operations as one transaction through ``table``'s pipeline.  Returns how many
    were written; a refused transaction raises :class:`TransactionRejectedError` (nothing of it was
    written), SDK transport errors propagate as they are."""
    from azure.core.rest import HttpRequest

    if not operations:
        return 0
    if len({op.entity["PartitionKey"] for op in operations}) != 1 or len(operations) > MAX_OPERATIONS:
        raise ValueError("a transaction holds at most 100 entities of one partition")
    account, _, sas = endpoints(table)
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    request = HttpRequest("POST", f"{account}/$batch{'?' + sas if sas else ''}", headers={
        **PROTOCOL_HEADERS, "Content-Type": f"multipart/mixed; boundary={batch}", "Accept": "application/json",
    }, content=assemble(operations, batch, changeset))
    response = send(table, request)
    body: bytes = response.read()
    status = response.status_code
    if status == 202 and str(response.headers.get("Content-Type", "")).startswith("multipart/mixed"):
        statuses = [int(found) for found in _STATUS.findall(body)]
        failed = [found for found in statuses if not 200 <= found < 300]
        if failed:
            raise TransactionRejectedError(f"transaction rejected (HTTP {failed[0]}): {error_text(body)}")
        if len(statuses) == len(operations):
            return len(operations)
    elif 400 <= status < 500 and (b"odata.error" in body or status == 413):
        raise TransactionRejectedError(f"transaction refused with HTTP {status}: {error_text(body)}")
    log.warning("Table Storage answered a transaction with HTTP %s %s (%s), not the expected multipart 202; "
                "sending it once more through the SDK's submit_transaction", status,
                response.headers.get("Content-Type", "(no content type)"), error_text(body))
    return _sdk_submit(table, operations)


def _sdk_submit(table: Any, operations: Sequence[Operation]) -> int:
    from azure.core.exceptions import HttpResponseError
    from azure.data.tables import TableTransactionError, UpdateMode

    try:
        table.submit_transaction([("upsert", dict(op.entity), {"mode": UpdateMode.REPLACE}) for op in operations])
    except TableTransactionError:
        raise  # the store maps it to TransactionRejectedError
    except HttpResponseError as exc:
        if exc.status_code is not None and 400 <= exc.status_code < 500 and exc.status_code not in (408, 429):
            raise TransactionRejectedError(f"transaction refused with HTTP {exc.status_code} "
                                           f"(SDK): {str(exc).strip().splitlines()[0]}") from exc
        raise
    return len(operations)
