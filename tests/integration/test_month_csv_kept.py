"""The org-wide month CSV kept once rendered, on Azurite: served byte for byte as first rendered while
the month's rows and prices stay as they were, rendered again after any write of the month, never
kept or served while a write is under way, and never served from damaged or half-replaced parts."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.adapters.month_report_tables import PART_BYTES, TableMonthReports, reports_table_name
from shared.adapters.report_generations import changing, generation_key
from shared.adapters.tables import TableStore, usage_entity
from shared.adapters.usage_index import index_entity
from shared.api.app import AppContext, create_app
from shared.composition import table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.services.month_csv import REPORT
from shared.settings import Settings
from tests.conftest import TEST_API_KEY

NOW = datetime(2026, 12, 2, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_CSV = {"from": "2026-10-01", "to": "2026-10-31", "granularity": "month", "format": "csv"}


def month_rows(subscriptions: int, requests: int = 1) -> list[UsageRow]:
    return [UsageRow(Granularity.MONTH, OCTOBER, UsageKey(f"sub-{s:03d}", "p", "gpt-4o", "gpt-4o"),
                     Counters(requests=requests + s, prompt_tokens=100 * (s + 1), total_tokens=100 * (s + 1)))
            for s in range(subscriptions)]


def get(settings: Settings, store: TableStore, params: dict[str, str]) -> httpx.Response:
    app = create_app(AppContext(lambda: settings, lambda _: store, clock=lambda: NOW))

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers={"x-api-key": TEST_API_KEY}) as client:
            return await client.get("/api/usage", params=params)

    response = asyncio.run(run())
    assert response.status_code == 200, response.text
    return response


def requests_by_subscription(text: str) -> dict[str, int]:
    return {row["subscriptionId"]: int(row["requests"]) for row in csv.DictReader(io.StringIO(text))}


def head(store: TableStore, month: str = "2026-10") -> dict[str, Any] | None:
    from azure.core.exceptions import ResourceNotFoundError

    table = store.table_client(reports_table_name(store.prefix))
    try:
        return dict(table.get_entity(f"{REPORT}|{month}", "current"))
    except ResourceNotFoundError:
        return None


@pytest.fixture
def store(settings: Settings) -> TableStore:
    store = table_store(settings)
    store.upsert(month_rows(40))
    return store


def test_the_month_csv_is_kept_and_served_as_first_rendered(settings: Settings, store: TableStore) -> None:
    first = get(settings, store, MONTH_CSV)
    kept = head(store)
    assert kept is not None and kept["Parts"] == 1
    second = get(settings, store, MONTH_CSV)
    assert second.content == first.content
    assert second.headers["content-disposition"] == first.headers["content-disposition"]
    assert requests_by_subscription(second.text) == {f"sub-{s:03d}": 1 + s for s in range(40)}
    # a day view of the same month is not kept, and is not the month's text
    day = get(settings, store, {**MONTH_CSV, "granularity": "day"})
    assert head(store) == kept and day.content != first.content


def test_a_write_of_the_month_renders_it_again(settings: Settings, store: TableStore) -> None:
    get(settings, store, MONTH_CSV)
    before = store.report_generation("2026-10")
    november = store.report_generation("2026-11")
    store.upsert(month_rows(40, requests=50))
    assert store.report_generation("2026-10") not in (None, before)
    assert store.report_generation("2026-11") == november  # another month is untouched
    assert requests_by_subscription(get(settings, store, MONTH_CSV).text) == {f"sub-{s:03d}": 50 + s
                                                                               for s in range(40)}
    # a day row of the month (the finer rows a price change inside the month is priced from) counts too
    again = store.report_generation("2026-10")
    store.upsert([UsageRow(Granularity.DAY, datetime(2026, 10, 5, tzinfo=UTC),
                           UsageKey("sub-000", "p", "gpt-4o", "gpt-4o"), Counters(requests=1))])
    assert store.report_generation("2026-10") not in (None, again)


def test_nothing_is_kept_or_served_while_a_write_is_under_way(settings: Settings, store: TableStore) -> None:
    first = get(settings, store, MONTH_CSV)
    kept = head(store)
    with pytest.raises(RuntimeError), changing([generation_key("2026-10")],
                                               lambda marks: store.replace_entities(store.state_table, marks)):
        raise RuntimeError("the writer crashed part way")
    assert store.report_generation("2026-10") is None
    assert store.report_generation("2026-11") is not None
    rows = month_rows(40, requests=7)
    # written after the mark, with no settling (as the crashed writer would have left them)
    entities = [usage_entity(row) for row in rows]
    store._replace(store.usage_table, entities)
    store._replace(store.index_table, [index_entity(entity) for entity in entities])
    live = get(settings, store, MONTH_CSV)
    assert requests_by_subscription(live.text) == {f"sub-{s:03d}": 7 + s for s in range(40)}
    assert live.content != first.content and head(store) == kept  # served live, nothing new kept
    store.upsert(rows)  # the next successful write settles the month
    assert store.report_generation("2026-10") is not None
    assert get(settings, store, MONTH_CSV).content == live.content
    assert head(store)["WriteId"] != kept["WriteId"]  # type: ignore[index]


def test_damaged_parts_are_never_served(settings: Settings, store: TableStore) -> None:
    first = get(settings, store, MONTH_CSV)
    kept = head(store)
    assert kept is not None
    table = store.table_client(reports_table_name(store.prefix))
    part = dict(table.get_entity(f"{REPORT}|2026-10", f"part|{kept['WriteId']}|0000"))
    damaged = bytearray(part["D00"])
    damaged[-1] ^= 0xFF
    store.replace_entities(table.table_name, [{**part, "D00": bytes(damaged)}])
    assert get(settings, store, MONTH_CSV).content == first.content  # rendered live, and kept again
    assert head(store)["WriteId"] != kept["WriteId"]  # type: ignore[index]


def test_a_report_of_several_parts_reads_back_whole(store: TableStore) -> None:
    reports = TableMonthReports(store)
    text = os.urandom(int(PART_BYTES * 1.5)).hex()  # hex of random bytes: about half compresses away
    writer = reports.writer(REPORT, "2026-09", "inputs-1")
    for at in range(0, len(text), 100_000):
        writer.add(text[at:at + 100_000])
    assert writer.commit()
    table = store.table_client(reports_table_name(store.prefix))
    assert dict(table.get_entity(f"{REPORT}|2026-09", "current"))["Parts"] >= 2
    served = reports.read(REPORT, "2026-09", "inputs-1")
    assert served is not None and "".join(served) == text
    assert reports.read(REPORT, "2026-09", "inputs-2") is None  # other inputs: not this report
    # a newer version replaces the parts of the older
    writer = reports.writer(REPORT, "2026-09", "inputs-2")
    writer.add("short")
    assert writer.commit()
    parts = list(table.query_entities("PartitionKey eq @p", parameters={"p": f"{REPORT}|2026-09"}))
    assert len(parts) == 2  # current and the one part of the new version
    served = reports.read(REPORT, "2026-09", "inputs-2")
    assert served is not None and "".join(served) == "short"


def test_a_crashed_index_rebuild_stops_every_month_until_one_completes(store: TableStore) -> None:
    with pytest.raises(RuntimeError), store.changing_every_month():
        raise RuntimeError("the rebuild crashed part way")
    assert store.report_generation("2026-10") is None and store.report_generation("2021-01") is None
    store.upsert(month_rows(1))
    assert store.report_generation("2026-10") is None  # a month write does not vouch for the whole index
    before = store.report_generation("2026-09")
    with store.changing_every_month():
        pass
    after = store.report_generation("2026-10")
    assert after is not None and store.report_generation("2026-09") not in (None, before)


def test_an_index_rebuild_renders_kept_reports_again(settings: Settings, store: TableStore) -> None:
    from shared.adapters.usage_index_rebuild import rebuild

    first = get(settings, store, MONTH_CSV)
    kept = head(store)
    rebuild(store, OCTOBER, datetime(2026, 11, 1, tzinfo=UTC))
    assert get(settings, store, MONTH_CSV).content == first.content
    assert head(store)["WriteId"] != kept["WriteId"]  # type: ignore[index]


def test_the_scheduled_run_keeps_the_month_it_wrote(settings: Settings) -> None:
    from shared.composition import alert_service, month_report_keeper, rollup_service
    from shared.services.scheduled_run import scheduled_run
    from shared.tooling.demo.demo_run import write_demo_workspace
    from tests.fakes import FakeClock

    now = datetime(2026, 11, 20, 6, tzinfo=UTC)
    settings = settings.with_overrides(ROLLUP_INGESTION_DELAY_MINUTES="0", ROLLUP_LOOKBACK_MINUTES="180")
    write_demo_workspace(settings.local_workspace_path, seed=3, days=1, end=now)
    clock = FakeClock(now)
    service = rollup_service(settings)
    service.clock = clock
    said: list[str] = []
    scheduled_run(service, lambda: alert_service(settings, clock=clock), report=said.append,
                  keep_reports=month_report_keeper(settings))
    assert "month reports kept: 2026-11" in said
    store = table_store(settings)
    kept = head(store, "2026-11")
    assert kept is not None
    response = get(settings, store, {"from": "2026-11-01", "to": "2026-11-30", "granularity": "month", "format": "csv"})
    assert head(store, "2026-11") == kept  # served as kept, not rendered again
    stored = store.read_all(Granularity.MONTH, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    listed = sum(int(row["requests"]) for row in csv.DictReader(io.StringIO(response.text)))
    assert listed == sum(r.counters.requests for r in stored) > 0
    # the same window again: its rows are written again (a new generation), so the month is rendered
    # and kept again, and a rerun changes nothing in it
    said.clear()
    scheduled_run(service, lambda: alert_service(settings, clock=clock), report=said.append,
                  keep_reports=month_report_keeper(settings))
    assert "month reports kept: 2026-11" in said and head(store, "2026-11")["WriteId"] != kept["WriteId"]  # type: ignore[index]
    again = get(settings, store, {"from": "2026-11-01", "to": "2026-11-30", "granularity": "month", "format": "csv"})
    assert again.content == response.content
