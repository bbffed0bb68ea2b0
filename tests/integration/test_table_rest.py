"""The lean Table Storage calls against a real Azurite: the ``$batch`` writer
(shared/adapters/table_batch.py) must store exactly what the SDK's own transaction stores, stay
atomic and fail loudly; the query reader (shared/adapters/table_query.py) must return what the
SDK's query returns, page by page, with values bound only as literals."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from azure.data.tables import UpdateMode

from shared.adapters.table_batch import submit_replace
from shared.adapters.table_query import bind, query
from shared.composition import table_store
from shared.errors import StorageError
from shared.settings import Settings
from tests.unit.test_table_entities import AT, sample


def test_a_transaction_stores_what_the_sdk_stores(settings: Settings) -> None:
    store = table_store(settings)
    ours, sdks = store.table(settings.table_prefix + "ours"), store.table(settings.table_prefix + "sdks")
    # Keys with the characters OData and URLs treat specially (the key rules forbid only / \ # ?).
    entities = [sample("part 'one' %41+é", f"row '{n}' %20 & = ; é", n) for n in range(7)]
    assert submit_replace(ours, entities) == 7
    sdks.submit_transaction([("upsert", e, {"mode": UpdateMode.REPLACE}) for e in entities])
    read_ours = sorted(ours.list_entities(), key=lambda e: e["RowKey"])
    read_sdks = sorted(sdks.list_entities(), key=lambda e: e["RowKey"])
    assert len(read_ours) == 7
    for mine, theirs in zip(read_ours, read_sdks, strict=True):
        assert _comparable(mine) == _comparable(theirs)
    first = read_ours[0]
    assert first["PartitionKey"] == "part 'one' %41+é" and first["RowKey"] == "row '0' %20 & = ; é"
    assert first["Big"].value == 2**62 and first["When"] == AT and first["Offset"] == AT and "Missing" not in first


def test_a_transaction_replaces_whole_entities(settings: Settings) -> None:
    table = table_store(settings).table(settings.table_prefix + "replace")
    submit_replace(table, [{"PartitionKey": "p", "RowKey": "r", "Old": "gone", "Kept": 1}])
    submit_replace(table, [{"PartitionKey": "p", "RowKey": "r", "Kept": 2}])
    entity = table.get_entity("p", "r")
    assert entity["Kept"] == 2 and "Old" not in entity  # replace, not merge: a rerun gives identical rows


def test_a_rejected_transaction_writes_nothing_and_says_why(settings: Settings) -> None:
    table = table_store(settings).table(settings.table_prefix + "atomic")
    entities = [{"PartitionKey": "p", "RowKey": f"r{n}", "Value": n} for n in range(5)]
    entities[3]["RowKey"] = "bad/key"  # '/' is not allowed in a key: the service refuses the changeset
    with pytest.raises(StorageError, match="HTTP 400"):
        submit_replace(table, entities)
    assert list(table.list_entities()) == []


def test_many_partitions_in_flight_all_land_and_a_refused_entity_is_set_aside(settings: Settings) -> None:
    store = table_store(settings)
    name = settings.table_prefix + "many"
    good: list[dict[str, Any]] = [{"PartitionKey": f"p{p:02d}", "RowKey": f"r{r:03d}", "Value": p * 1000 + r}
            for p in range(12) for r in range(150)]
    assert store.replace_entities(name, good) == len(good)  # 24 transactions, several at once
    table = store.table(name)
    assert sorted(e["Value"] for e in table.list_entities()) == sorted(e["Value"] for e in good)
    bad = [{"PartitionKey": "p00", "RowKey": "x/y", "Value": 1}] + [
        {"PartitionKey": f"q{p}", "RowKey": "r", "Value": p} for p in range(5)]
    assert store.replace_entities(name, bad) == 5  # the refused one is quarantined, not raised
    assert store.quarantined_count() == 1
    # The other partitions' transactions were independent: they are written.
    assert {e["PartitionKey"] for e in table.query_entities("RowKey eq @r", parameters={"r": "r"})} == {
        f"q{p}" for p in range(5)}


def _comparable(entity: Any) -> dict[str, Any]:
    out = {}
    for name, value in dict(entity).items():
        value = getattr(value, "value", value)
        out[name] = "nan" if isinstance(value, float) and math.isnan(value) else value
    return out


# -- queries ---------------------------------------------------------------------------------------------
def test_a_query_returns_what_the_sdk_returns(settings: Settings) -> None:
    table = table_store(settings).table(settings.table_prefix + "read")
    entities = [sample("p'q", f"r{n}", n) for n in range(5)]
    submit_replace(table, entities)
    ours = list(query(table, "PartitionKey eq @pk and RowKey ge @low", {"pk": "p'q", "low": "r1"}))
    sdks = list(table.query_entities("PartitionKey eq @pk and RowKey ge @low", parameters={"pk": "p'q", "low": "r1"}))
    assert len(ours) == 4
    assert [_comparable(e) for e in ours] == [_comparable(e) for e in sdks]
    selected = list(query(table, "RowKey eq @r", {"r": "r2"}, select=["Big", "When"]))
    assert selected == [{"Big": 2**62 + 2, "When": AT + timedelta(hours=2)}]


def test_a_query_follows_continuations_past_1000_entities(settings: Settings) -> None:
    store = table_store(settings)
    name = settings.table_prefix + "pages"
    store.replace_entities(name, [{"PartitionKey": f"p{p}", "RowKey": f"{r:05d}", "N": p * 10000 + r}
                                  for p in range(3) for r in range(900)])  # 2,700: three pages across partitions
    got = list(query(store.table(name), "RowKey ge @low", {"low": "00000"}))
    assert sorted(e["N"] for e in got) == sorted(p * 10000 + r for p in range(3) for r in range(900))
    one = list(query(store.table(name), "PartitionKey eq @pk and RowKey ge @low", {"pk": "p1", "low": "00100"}))
    assert [e["N"] for e in one] == [10000 + r for r in range(100, 900)]


@pytest.mark.parametrize("payload", ["x' or PartitionKey ne 'x", "' or 1 eq 1 or '", "%27 or true", "a'' or ''='"])
def test_query_values_are_literals(settings: Settings, payload: str) -> None:
    assert bind("PartitionKey eq @pk", {"pk": payload}) == "PartitionKey eq '" + payload.replace("'", "''") + "'"
    table = table_store(settings).table(settings.table_prefix + "inject")
    submit_replace(table, [{"PartitionKey": "x", "RowKey": "1"}])
    assert list(query(table, "PartitionKey eq @pk", {"pk": payload})) == []  # nothing leaks


def test_only_strings_are_bound_and_a_refused_query_says_why(settings: Settings) -> None:
    with pytest.raises(TypeError):
        bind("N eq @n", {"n": 1})  # type: ignore[dict-item]
    table = table_store(settings).table(settings.table_prefix + "bad")
    with pytest.raises(StorageError, match="HTTP 400"):
        list(query(table, "this is not odata @x", {"x": "y"}))


