"""The ``$batch`` fast path sends the SDK's own bytes.

Both requests are taken from the same place: a transport handed to a real ``TableClient`` (the
SDK's public ``transport=`` option) that keeps the request it is given and sends nothing.  The
SDK's comes from its own ``submit_transaction``; ours from ``table_batch.submit_replace`` through
the same client's pipeline.  Only the multipart boundaries (random ids) and the date headers
(the clock) are allowed to differ.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core.pipeline.transport import HttpTransport
from azure.data.tables import EdmType, EntityProperty, TableClient, UpdateMode

from shared.adapters.table_batch import entity_from_json, entity_json, submit_replace

ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONNECTION = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
              "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;")
AT = datetime(2026, 11, 25, 13, 7, 9, 123456, tzinfo=UTC)


class Captured(Exception):
    """Raised by the transport instead of sending: the pipeline stops, the request is kept."""


class CapturingTransport(HttpTransport):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self.requests: list[Any] = []

    def __enter__(self) -> CapturingTransport:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.requests.append(request)
        raise Captured()


def captured(entities: Sequence[Mapping[str, Any]]) -> tuple[Any, Any]:
    """(the SDK's request, ours) for one transaction of ``entities``."""
    transport = CapturingTransport()
    table = TableClient.from_connection_string(CONNECTION, "hostile", transport=transport)
    with pytest.raises(Captured):
        table.submit_transaction([("upsert", dict(e), {"mode": UpdateMode.REPLACE}) for e in entities])
    with pytest.raises(Captured):
        submit_replace(table, entities)
    sdk, ours = transport.requests
    return sdk, ours


def normalized(body: bytes) -> bytes:
    body = re.sub(rb"(batch|changeset)_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", rb"\1_ID", body)
    return re.sub(rb"(?m)^(x-ms-date|Date): [^\r\n]*", rb"\1: DATE", body)


HOSTILE_TEXT = {
    "LineSeparator": "a\u2028b", "ParagraphSeparator": "a\u2029b", "LoneHigh": "x\ud800y", "LoneLow": "\udfffz",
    "Reversed": "\udc00\ud800", "Astral": "😀 𝄞", "Controls": "".join(chr(c) for c in range(32)) + "\x7f\x85\x9f",
    "Quotes": "'\"\\/ <>&", "Long": "é" * 32_000, "LongAscii": "x" * 32_767, "Empty": "", "Bom": "\ufeff\ufffe\uffff",
}
EVERY_EDM = {
    "Int32": -(2**31), "Int32Max": 2**31 - 1, "Int64": EntityProperty(-(2**63), EdmType.INT64),
    "Int64Text": EntityProperty("9223372036854775807", EdmType.INT64), "Typed32": EntityProperty(7, EdmType.INT32),
    "Double": 0.1, "Tiny": 5e-324, "Huge": 1.7976931348623157e308, "NegZero": -0.0, "Nan": math.nan,
    "Inf": math.inf, "NegInf": -math.inf, "TypedDouble": EntityProperty(2.5, EdmType.DOUBLE),
    "Bool": True, "TypedBool": EntityProperty(False, EdmType.BOOLEAN),
    "When": AT, "Offset": AT.astimezone(timezone(timedelta(hours=-9, minutes=-30))), "Epoch": datetime(1, 1, 1,
                                                                                                     tzinfo=UTC),
    "TypedWhen": EntityProperty(AT, EdmType.DATETIME),
    "Guid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "TypedGuid": EntityProperty("87654321-4321-8765-4321-876543218765", EdmType.GUID),
    "Binary": bytes(range(256)), "TypedBinary": EntityProperty(b"\x00\xff", EdmType.BINARY),
    "TypedString": EntityProperty("\u2028", EdmType.STRING), "Missing": None,
}
FORBIDDEN_KEY_CHARACTERS = "/\\#?" + "".join(chr(c) for c in range(32)) + "".join(chr(c) for c in range(0x7F, 0xA0))
KEYS = ["plain", "quote'd ''twice''", FORBIDDEN_KEY_CHARACTERS, "\u2028\u2029", "%27%20+&=;", "é漢字😀", "k" * 512]


def corpus() -> list[dict[str, Any]]:
    entities = []
    for index, row in enumerate(KEYS):
        entity: dict[str, Any] = {"PartitionKey": "p'" + FORBIDDEN_KEY_CHARACTERS, "RowKey": f"{index}{row}"}
        entity.update(HOSTILE_TEXT if index % 2 == 0 else EVERY_EDM)
        entities.append(entity)
    return entities


def test_a_hostile_transaction_is_byte_for_byte_the_sdks() -> None:
    sdk, ours = captured(corpus())
    assert normalized(ours.content) == normalized(sdk.body)
    assert len(ours.content) > 200_000  # the 32K strings, escaped, really were in it
    assert b"\\u2028" in ours.content and b"\\ud800" in ours.content  # escaped, never raw
    for name in ("x-ms-version", "DataServiceVersion", "MaxDataServiceVersion", "Accept"):
        assert ours.headers[name] == sdk.headers[name]
    assert ours.headers["Content-Type"].split("boundary=batch_")[0] == sdk.headers["Content-Type"].split(
        "boundary=batch_")[0]
    assert (ours.method, ours.url) == (sdk.method, sdk.url)


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXT) + sorted(EVERY_EDM))
def test_each_value_alone_is_the_sdks(name: str) -> None:
    value = {**HOSTILE_TEXT, **EVERY_EDM}[name]
    sdk, ours = captured([{"PartitionKey": "p", "RowKey": "r", name: value}])
    assert normalized(ours.content) == normalized(sdk.body)


@pytest.mark.parametrize("key", ["lone\ud800", "\udfff"])
def test_a_key_no_url_can_carry_is_refused_by_both(key: str) -> None:
    """Neither serializer can percent-encode an unpaired surrogate (the store quarantines it first)."""
    transport = CapturingTransport()
    table = TableClient.from_connection_string(CONNECTION, "hostile", transport=transport)
    with pytest.raises(UnicodeEncodeError):
        table.submit_transaction([("upsert", {"PartitionKey": "p", "RowKey": key}, {"mode": UpdateMode.REPLACE})])
    with pytest.raises(UnicodeEncodeError):
        submit_replace(table, [{"PartitionKey": "p", "RowKey": key}])
    assert transport.requests == []


def test_a_kept_entity_is_sent_again_exactly_as_built() -> None:
    """Quarantine keeps an entity as its JSON: what comes back from it serializes identically."""
    for entity in corpus():
        document = entity_json(entity)
        assert entity_json(entity_from_json(document)) == document
    sdk, ours = captured([entity_from_json(entity_json(e)) for e in corpus()])
    assert normalized(ours.content) == normalized(sdk.body)
