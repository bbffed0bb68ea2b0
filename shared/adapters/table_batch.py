"""Entity-group transactions (Table Storage ``$batch``) of replace-upserts, built without the SDK's
multipart machinery.

azure-data-tables builds and parses every transaction through the ``email`` package: about 0.4 ms
of Python per entity, five times the work Azurite does to store it, and the bound of every rollup
write (bench 4, README Performance).  This module writes the same wire format directly (the OData
``multipart/mixed`` batch of one changeset, as the SDK sends it) and reads back only the status
lines.  The request still goes through the table client's own pipeline (:mod:`shared.adapters.table_rest`),
so authentication (shared key or managed identity), retries and the user agent stay the SDK's.

Only what the chargeback tables store is serialized (str, bool, int, float, aware datetime and
``EntityProperty`` Int64), with the SDK's rules (``tests/integration/test_table_rest.py`` compares both).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from shared.adapters.table_rest import PROTOCOL_HEADERS, endpoints, error_text, send
from shared.errors import TransactionRejectedError

INT32 = range(-(2**31), 2**31)
INT64 = range(-(2**63), 2**63)
_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})[^\r\n]*", re.MULTILINE)


def entity_json(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of one entity, typed as azure-data-tables types it (``@odata.type``)."""
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue  # Table Storage has no null: the property is left out
        edm, plain = _typed(name, value)
        out[name] = plain
        if edm:
            out[f"{name}@odata.type"] = edm
    return out


def _typed(name: str, value: Any) -> tuple[str | None, Any]:
    edm_type = getattr(value, "edm_type", None)
    if edm_type is not None:  # EntityProperty(value, EdmType.X): only Int64 is written here
        if getattr(edm_type, "value", edm_type) != "Edm.Int64" or int(value.value) not in INT64:
            raise TypeError(f"property {name}: unsupported typed value {value!r}")
        return "Edm.Int64", str(int(value.value))
    if isinstance(value, bool):
        return None, value
    if isinstance(value, int):
        if value not in INT32:  # as the SDK: a plain int is Int32, larger ones must say Int64
            raise TypeError(f"property {name}: {value} does not fit Int32; wrap it as Int64")
        return None, value
    if isinstance(value, float):
        if math.isnan(value):
            return "Edm.Double", "NaN"
        if math.isinf(value):
            return "Edm.Double", "Infinity" if value > 0 else "-Infinity"
        return "Edm.Double", value
    if isinstance(value, str):
        return "Edm.String", value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError(f"property {name}: naive datetime {value!r} (Table Storage keeps UTC)")
        return "Edm.DateTime", value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise TypeError(f"property {name}: unsupported type {type(value).__name__}")


def _key(value: str) -> str:
    return quote(value.replace("'", "''"), safe="")


def transaction_body(table_url: str, entities: list[Mapping[str, Any]], batch: str, changeset: str) -> bytes:
    """The ``$batch`` body: one changeset of ``PUT`` (insert or replace) per entity."""
    parts: list[str | bytes] = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"]
    for index, entity in enumerate(entities):
        content = json.dumps(entity_json(entity), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        target = f"{table_url}(PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}')"
        parts.append(
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {index}\r\n\r\nPUT {target} HTTP/1.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\nx-ms-version: {PROTOCOL_HEADERS['x-ms-version']}\r\n"
            f"DataServiceVersion: 3.0\r\n"
            f"Accept: application/json\r\n\r\n")
        parts.append(content)
        parts.append("\r\n")
    parts.append(f"--{changeset}--\r\n\r\n--{batch}--\r\n")
    return b"".join(part.encode("utf-8") if isinstance(part, str) else part for part in parts)


def submit_replace(table: Any, entities: Iterable[Mapping[str, Any]]) -> int:
    """Insert-or-replace ``entities`` (one partition, at most 100) as one atomic transaction
    through ``table``'s pipeline.  Returns how many were written; a rejected transaction raises
    :class:`TransactionRejectedError` (nothing of it was written), SDK transport errors propagate as they are."""
    from azure.core.rest import HttpRequest

    batch_entities = list(entities)
    if not batch_entities:
        return 0
    if len({entity["PartitionKey"] for entity in batch_entities}) != 1 or len(batch_entities) > 100:
        raise ValueError("a transaction holds at most 100 entities of one partition")
    account, table_url, sas = endpoints(table)
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    request = HttpRequest("POST", f"{account}/$batch{'?' + sas if sas else ''}", headers={
        **PROTOCOL_HEADERS, "Content-Type": f"multipart/mixed; boundary={batch}", "Accept": "application/json",
    }, content=transaction_body(table_url, batch_entities, batch, changeset))
    response = send(table, request)
    body: bytes = response.read()
    if response.status_code != 202:
        raise TransactionRejectedError(f"transaction refused with HTTP {response.status_code}: {error_text(body)}")
    statuses = [int(status) for status in _STATUS.findall(body)]
    failed = [status for status in statuses if not 200 <= status < 300]
    if failed:
        raise TransactionRejectedError(f"transaction rejected (HTTP {failed[0]}): {error_text(body)}")
    if len(statuses) != len(batch_entities):
        raise TransactionRejectedError(f"transaction answered {len(statuses)} of {len(batch_entities)} operations")
    return len(batch_entities)
