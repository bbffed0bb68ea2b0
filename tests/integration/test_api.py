"""The report API through an ASGI client, against rows read back from Azurite."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from shared.api.app import AppContext, create_app
from shared.composition import table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.settings import Settings
from tests.conftest import TEST_API_KEY

T = TypeVar("T")

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def client(settings: Settings) -> httpx.Client:
    app = create_app(AppContext(lambda: settings, clock=lambda: NOW))
    return httpx.Client(transport=httpx.ASGITransport(app=app), base_url="http://test",  # type: ignore[arg-type]
                        headers={"x-api-key": TEST_API_KEY})


def hour(day: int, h: int) -> datetime:
    return datetime(2026, 11, day, h, tzinfo=UTC)


@pytest.fixture
def seeded(settings: Settings) -> Settings:
    rows = []
    for day in (3, 4, 24):
        for h in (9, 15):
            rows.append(UsageRow(Granularity.HOUR, hour(day, h), UsageKey("team-a", "p1", "gpt-4o", "gpt-4o"),
                                 Counters(requests=2, prompt_tokens=100 * day, completion_tokens=10 * h,
                                          total_tokens=100 * day + 10 * h)))
            rows.append(UsageRow(Granularity.HOUR, hour(day, h), UsageKey("team-b", "p2", "gpt-4o-mini", "mini"),
                                 Counters(requests=1, prompt_tokens=7, total_tokens=7, error_requests=1)))
    store = table_store(settings)
    store.upsert(rows)
    store.upsert(merge(rows, Granularity.DAY))
    store.upsert(merge(rows, Granularity.MONTH))
    return settings


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def get(settings: Settings, path: str, **params: object) -> httpx.Response:
    async def call() -> httpx.Response:
        app = create_app(AppContext(lambda: settings, clock=lambda: NOW))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     headers={"x-api-key": TEST_API_KEY}) as c:
            return await c.get(path, params=params)  # type: ignore[arg-type]

    return run_async(call())


def test_daily_report_for_one_subscription(seeded: Settings) -> None:
    response = get(seeded, "/api/usage", subscription="team-a", **{"from": "2026-11-01", "to": "2026-11-04"})
    assert response.status_code == 200
    body = response.json()
    assert [r["periodStart"] for r in body["rows"]] == ["2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z"]
    assert body["rows"][0]["promptTokens"] == 600 and body["rows"][0]["completionTokens"] == 240
    assert body["totals"]["totalTokens"] == (600 + 240) + (800 + 240)
    assert body["totals"]["requests"] == 8


def test_default_range_is_month_to_date_and_all_subscriptions(seeded: Settings) -> None:
    body = get(seeded, "/api/usage", granularity="month").json()
    assert body["from"] == "2026-11-01T00:00:00Z" and body["to"] == "2026-11-25T12:00:00Z"
    assert {r["subscriptionId"]: r["requests"] for r in body["rows"]} == {"team-a": 12, "team-b": 6}
    assert body["totals"]["errorRequests"] == 6


def test_several_subscriptions_and_hourly_rows(seeded: Settings) -> None:
    body = get(seeded, "/api/usage", subscription=["team-a", "team-b"], granularity="hour",
               **{"from": "2026-11-24T00:00:00Z", "to": "2026-11-24T12:00:00Z"}).json()
    assert [(r["periodStart"], r["subscriptionId"]) for r in body["rows"]] == [
        ("2026-11-24T09:00:00Z", "team-a"), ("2026-11-24T09:00:00Z", "team-b")]


def test_csv_parses_back_to_the_same_numbers(seeded: Settings) -> None:
    response = get(seeded, "/api/usage", format="csv", **{"from": "2026-11-01", "to": "2026-11-30"})
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="usage-20261101-20261201-day.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    as_json = get(seeded, "/api/usage", **{"from": "2026-11-01", "to": "2026-11-30"}).json()["rows"]
    assert len(rows) == len(as_json) == 6
    assert sum(int(r["totalTokens"]) for r in rows) == sum(r["totalTokens"] for r in as_json)


def test_empty_range_is_a_well_formed_empty_report(seeded: Settings) -> None:
    body = get(seeded, "/api/usage", **{"from": "2026-10-01", "to": "2026-10-31"}).json()
    assert body["rows"] == [] and body["totals"]["totalTokens"] == 0


@pytest.mark.parametrize(("params", "parameter"), [
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01"}, "to"),
    ({"from": "2026-11-10", "to": "2026-11-01"}, "from"),
    ({"granularity": "week"}, "granularity"),
    ({"format": "xml"}, "format"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),
])
def test_bad_parameters_get_400_naming_them(settings: Settings, params: dict[str, str], parameter: str) -> None:
    response = get(settings, "/api/usage", **params)
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == parameter
    assert parameter in response.json()["error"]["message"]


def test_missing_or_wrong_key_is_401_without_data(seeded: Settings) -> None:
    app = create_app(AppContext(lambda: seeded, clock=lambda: NOW))

    async def call(headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.get("/api/usage", headers=headers)

    for headers in ({}, {"x-api-key": "wrong-key-0123456789"}):
        response = run_async(call(headers))
        assert response.status_code == 401
        assert "rows" not in response.json()


def test_storage_down_is_503_without_internals(settings: Settings, azurite) -> None:  # type: ignore[no-untyped-def]
    from shared.tooling.azurite_process import free_port

    dead = settings.with_overrides(TABLES_CONNECTION_STRING=settings.tables_connection_string.replace(  # type: ignore[union-attr]
        f":{azurite.port}/", f":{free_port()}/"))
    response = get(dead, "/api/usage")
    assert response.status_code == 503
    text = response.text
    assert "AccountKey" not in text and "Traceback" not in text and "127.0.0.1" not in text
    health = get(dead, "/api/health")
    assert health.status_code == 503 and health.json()["storage"] == "unavailable"


def test_health_and_openapi(settings: Settings) -> None:
    # a fresh store: no rollup has run yet, so nothing lags (tests/integration/test_pipeline_watch.py: the rest)
    assert get(settings, "/api/health").json() == {
        "status": "ok", "storage": "ok", "lastSuccessfulRollup": None, "lastRun": None, "watermark": None,
        "watermarkLagSeconds": None, "maxLagMinutes": 60, "outboxBacklog": None, "quarantinedRows": None}
    schema = get(settings, "/api/openapi.json").json()
    assert "/api/usage" in schema["paths"] and "/api/health" in schema["paths"]
    params = {p["name"] for p in schema["paths"]["/api/usage"]["get"]["parameters"]}
    assert {"subscription", "from", "to", "granularity", "format"} <= params


def test_day_totals_match_hour_totals(seeded: Settings) -> None:
    days = get(seeded, "/api/usage", **{"from": "2026-11-01", "to": "2026-11-30"}).json()["totals"]
    hours = get(seeded, "/api/usage", granularity="hour", **{"from": "2026-11-01", "to": "2026-11-30"}).json()["totals"]
    assert days == hours
    assert timedelta(0) is not None
