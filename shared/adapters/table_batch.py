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
        if value not in INT32:  # as the SDK: a plain int is Int32, larger ones must say Int64
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
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    return quote(value.replace("'", "''"), safe="")


@dataclass(frozen=True)
class Operation:
    """One insert-or-replace, serialized once: its request line and headers, and its JSON body."""

    entity: Mapping[str, Any]
    head: bytes
    body: bytes

    @property
    def size(self) -> int:
        return len(self.head) + len(self.body) + OPERATION_OVERHEAD


def operation(table_url: str, entity: Mapping[str, Any]) -> Operation:
    # The SDK's own JSON: json.dumps defaults (", " and ": ", ASCII escapes), as azure-core writes it.
    content = json.dumps(entity_json(entity)).encode("ascii")
    target = f"{table_url}(PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}')"
    head = (f"PUT {target} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {len(content)}\r\n"
            f"x-ms-version: {PROTOCOL_HEADERS['x-ms-version']}\r\nDataServiceVersion: 3.0\r\n"
            f"Accept: application/json\r\n").encode("ascii")
    return Operation(entity, head, content)


def transaction_body(table_url: str, entities: Sequence[Mapping[str, Any]], batch: str, changeset: str,
                     date: str | None = None) -> bytes:
    """The ``$batch`` body: one changeset of ``PUT`` (insert or replace) per entity."""
    return assemble([operation(table_url, entity) for entity in entities], batch, changeset, date)


def assemble(operations: Sequence[Operation], batch: str, changeset: str, date: str | None = None) -> bytes:
    stamp = f"x-ms-date: {date or formatdate(usegmt=True)}\r\nDate: {date or formatdate(usegmt=True)}\r\n\r\n"
    parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n".encode("ascii")]
    for index, op in enumerate(operations):
        parts.append(f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
                     f"Content-ID: {index}\r\n\r\n".encode("ascii"))
        parts.extend((op.head, stamp.encode("ascii"), op.body, b"\r\n"))
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
