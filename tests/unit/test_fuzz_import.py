"""Fuzzing the exported-log parser (hypothesis): arbitrary bytes, encodings, JSON records with
hostile values and unknown fields.  Only ImportFormatError (a whole file unreadable) may come out;
every record is either a typed row or a Malformed with a line and a reason — never lost silently."""

from __future__ import annotations

import gzip
import json
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from shared.errors import ImportFormatError
from shared.tooling.log_import.readers import parse_bytes
from shared.tooling.log_import.records import Malformed, Row
from shared.workspace_schema import table_schemas

values = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                   st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
properties = st.dictionaries(
    st.sampled_from(["responseCode", "apimSubscriptionId", "promptTokens", "completionTokens", "modelName",
                     "sequenceNumber", "isStreamCompletion", "backendResponseBody", "totalTime", "surprise",
                     "requestHeaders", "url"]), values, max_size=8)
records = st.fixed_dictionaries(
    {"category": st.sampled_from(["GatewayLogs", "GatewayLlmLogs", "gatewayllmlogs", "Other", ""])},
    optional={"time": st.one_of(st.just("2026-11-20T10:00:00Z"), st.text(max_size=25), values),
              "correlationId": st.one_of(st.uuids().map(str), values),
              "properties": st.one_of(properties, values),
              "durationMs": values, "resourceId": st.text(max_size=20)})
documents = st.one_of(
    st.lists(records, max_size=6).map(lambda rs: "\n".join(json.dumps(r) for r in rs)),
    st.lists(records, max_size=6).map(lambda rs: json.dumps({"records": rs})),
    st.lists(records, max_size=6).map(json.dumps),
    st.text(max_size=200))


def check(data: bytes) -> None:
    try:
        parsed = parse_bytes(data)
        items = list(parsed.items)
    except ImportFormatError:
        return  # the whole file is unreadable: reported as such, with the reason
    columns = {table: {c.name for c in cols} for table, cols in table_schemas().items()}
    for item in items:
        assert isinstance(item, (Row, Malformed))
        if isinstance(item, Malformed):
            assert item.reason and item.line >= 1
        else:
            assert set(item.values) <= columns[item.table]
            assert item.values.get("TimeGenerated") is not None


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.booleans())
def test_documents_parse_to_rows_or_reported_malformed(text: str, compressed: bool) -> None:
    data = text.encode("utf-8")
    check(gzip.compress(data) if compressed else data)


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape(data: bytes) -> None:
    check(data)


def test_every_record_is_accounted_for() -> None:
    good = {"category": "GatewayLogs", "time": "2026-11-20T10:00:00Z", "correlationId": "c1",
            "properties": {"responseCode": 200}}
    bad_time: dict[str, Any] = {**good, "time": "yesterday", "correlationId": "c2"}
    bad_type = {**good, "correlationId": "c3", "properties": {"responseCode": "two hundred"}}
    text = "\n".join([json.dumps(good), "{not json", json.dumps(bad_time), json.dumps(bad_type)])
    items = list(parse_bytes(text.encode()).items)
    assert [type(i).__name__ for i in items] == ["Row", "Malformed", "Malformed", "Malformed"]
    assert [i.line for i in items] == [1, 2, 3, 4]
