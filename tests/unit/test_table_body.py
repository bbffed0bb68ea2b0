"""The direct entity serializer (``table_batch.entity_body``) writes exactly ``json.dumps(entity_json(e))``,
and request-line keys are exactly ``quote(key with quotes doubled, safe="")``, whatever the entity.

``entity_json`` itself is checked against the SDK's own typing (test_table_entities) and the whole
``$batch`` against the SDK's bytes (test_table_format); here the fast writer is held to it.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from azure.data.tables import EdmType, EntityProperty
from azure.data.tables._deserialize import TablesEntityDatetime  # what the SDK reads back
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters import table_batch
from shared.adapters.table_batch import entity_body, entity_json, operation
from tests.unit.test_table_format import EVERY_EDM, HOSTILE_TEXT, KEYS, corpus


def reference(entity: dict[Any, Any]) -> bytes | type[Exception]:
    try:
        return json.dumps(entity_json(entity)).encode("ascii")
    except (TypeError, ValueError) as exc:
        return type(exc)


def written(entity: dict[Any, Any]) -> bytes | type[Exception]:
    try:
        return entity_body(entity)
    except (TypeError, ValueError) as exc:
        return type(exc)


class Level(IntEnum):
    HIGH = 3


def read_back(text: str) -> datetime:
    """A datetime as the SDK returns it, its service text (7 decimals) kept."""
    value = TablesEntityDatetime(2026, 11, 1, 0, 0, 0, 123456, tzinfo=UTC)
    value._service_value = text  # type: ignore[attr-defined]
    return value


NEW_YORK = ZoneInfo("America/New_York")
ODD_VALUES: dict[str, Any] = {
    "IntSubclass": Level.HIGH, "StrEnumLike": EdmType.STRING, "Bool": False,
    "Int64Text": EntityProperty("42", EdmType.INT64),
    "Int64AsPlainText": EntityProperty(7, "Edm.Int64"), "Int64Bool": EntityProperty(True, EdmType.INT64),
    "Int64Float": EntityProperty(1.5, EdmType.INT64), "NoneTyped": EntityProperty(None, EdmType.INT64),
    "NoneTuple": (None, "x"), "ServiceDate": read_back("2026-11-01T00:00:00.1234567Z"),
    "Fixed": datetime(2026, 11, 1, 5, tzinfo=timezone(timedelta(hours=5))),
    "FoldFirst": datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK), "FoldSecond": datetime(2026, 11, 1, 1, 30, fold=1,
                                                                                       tzinfo=NEW_YORK),
    "Year1": datetime(1, 1, 1, tzinfo=UTC), "Guid": uuid.uuid4(), "Bytes": b"\x00\xff", "Nan": math.nan,
    "Utf16Name\u2028é": "value", "": "empty name",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXT) + sorted(EVERY_EDM) + sorted(ODD_VALUES))
def test_each_value_is_written_as_json_dumps_writes_it(name: str) -> None:
    value = {**HOSTILE_TEXT, **EVERY_EDM, **ODD_VALUES}[name]
    entity = {"PartitionKey": "p", "RowKey": "r", name: value}
    assert written(entity) == reference(entity)
    assert written(entity) == written(entity)  # the second time from the caches


def test_the_hostile_corpus_and_a_usage_row_are_written_as_json_dumps_writes_them() -> None:
    counters = {f"Counter{n}": EntityProperty(2**40 + n, EdmType.INT64) for n in range(15)}
    usage = {"PartitionKey": "sub-1", "RowKey": "h|2026-11-01T00|m|d|p", "Model": "gpt-4o",
             "PeriodStart": datetime(2026, 11, 1, tzinfo=UTC), "Small": 5, **counters}
    for entity in [*corpus(), usage, {}, {"PartitionKey": "p", "RowKey": "r"}]:
        assert entity_body(entity) == reference(entity)


def test_two_fold_sides_of_one_wall_time_keep_their_own_instants() -> None:
    """Equal wall times in a zone with a fold are equal datetimes but different instants: never one cached text."""
    first, second = (entity_body({"When": ODD_VALUES[name]}) for name in ("FoldFirst", "FoldSecond"))
    assert first != second
    assert b"2026-11-01T05:30:00.000000Z" in first and b"2026-11-01T06:30:00.000000Z" in second


@pytest.mark.parametrize("bad", [{"Naive": datetime(2026, 1, 1)}, {"Big": 2**31},
                                 {"Huge": EntityProperty(2**63, EdmType.INT64)}, {"List": [1]}, {1: "int key"},
                                 {"Typed32": EntityProperty(2**31, EdmType.INT32)}])
def test_what_entity_json_refuses_is_refused_alike_and_a_non_text_name_written_alike(bad: dict[Any, Any]) -> None:
    assert written(bad) == reference(bad)


def test_the_caches_stay_bounded_and_correct_when_full() -> None:
    names = [f"P{n}" for n in range(table_batch._CACHE_LIMIT + 10)]
    entity = {name: n for n, name in enumerate(names)}
    assert entity_body(entity) == reference(entity)
    starts = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n) for n in range(table_batch._CACHE_LIMIT + 10)]
    for start in starts[::97] + starts[-3:]:
        assert entity_body({"When": start}) == reference({"When": start})
    assert len(table_batch._PROPERTY_TEXT) <= table_batch._CACHE_LIMIT
    assert len(table_batch._UTC_TEXT) <= table_batch._CACHE_LIMIT


PLAIN = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**64), max_value=2**64), st.floats(),
                  st.text(), st.binary(max_size=20), st.uuids(),
                  st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3)), NEW_YORK])),
                  st.datetimes())
TYPED = st.builds(EntityProperty, st.one_of(st.none(), st.integers(min_value=-(2**64), max_value=2**64), st.text(),
                                            st.floats(), st.booleans()), st.sampled_from(list(EdmType)))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.one_of(PLAIN, TYPED), max_size=12))
def test_any_entity_is_written_as_json_dumps_writes_it(entity: dict[str, Any]) -> None:
    assert written(entity) == reference(entity)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_request_line_keys_are_quoted_as_before(key: str) -> None:
    head = operation("http://h/a/t", {"PartitionKey": key, "RowKey": key}).head.decode("ascii")
    expected = quote(key.replace("'", "''"), safe="")
    assert head.startswith(f"PUT http://h/a/t(PartitionKey='{expected}',RowKey='{expected}') HTTP/1.1\r\n")


@pytest.mark.parametrize("key", KEYS)
def test_hostile_keys_are_quoted_as_before(key: str) -> None:
    expected = quote(key.replace("'", "''"), safe="")
    for _ in range(2):  # computed, then from the cache
        assert operation("http://h/a/t", {"PartitionKey": key, "RowKey": "r"}).head.startswith(
            f"PUT http://h/a/t(PartitionKey='{expected}',RowKey='r') HTTP/1.1".encode("ascii"))
