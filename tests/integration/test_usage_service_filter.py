"""``/api/usage?apimService=``: only the rows of those APIM services (gateways), repeated or
comma-separated, names compared case-insensitively, at most 200 values (a 400 naming the parameter
beyond); paged, streamed as CSV and bound into the page token like the other filters.  Known rows in
Azurite, two gateways with same-named subscriptions (and service-less rows); the expected numbers
are summed here from the seeds."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.composition import table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.settings import Settings
from tests.billing_support import with_prices
from tests.usage_support import NOW, Api

MONTH = [("from", "2026-11-01"), ("to", "2026-11-30"), ("granularity", "month")]
SERVICES = ("apim-weu", "apim-eus", "")  # "": stored before the service was recorded, or merged
# (subscription, service) -> requests per hour row; every pair on days 3 and 10, hours 9 and 15
REQUESTS = {(sub, service): 1 + 3 * s + 7 * t for s, sub in enumerate(("team-a", "team-b"))
            for t, service in enumerate(SERVICES)}
HOURS = [datetime(2026, 11, day, hour, tzinfo=UTC) for day in (3, 10) for hour in (9, 15)]


@pytest.fixture
def seeded(settings: Settings, tmp_path: Path) -> Settings:
    priced = with_prices(settings, tmp_path)
    hourly = [UsageRow(Granularity.HOUR, at, UsageKey(sub, "p1", "alpha", "alpha-dep", service),
                       Counters(requests=n, prompt_tokens=100 * n, completion_tokens=10 * n, total_tokens=110 * n))
              for (sub, service), n in REQUESTS.items() for at in HOURS]
    table_store(priced).upsert([*hourly, *merge(hourly, Granularity.DAY), *merge(hourly, Granularity.MONTH)])
    return priced


def expected(services: set[str], subscriptions: set[str] | None = None) -> dict[tuple[str, str], int]:
    """Requests of the month per (subscription, service), summed from the seeds."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for (sub, service), n in REQUESTS.items():
        if service in services and (subscriptions is None or sub in subscriptions):
            out[(sub, service)] += n * len(HOURS)
    return dict(out)


def by_pair(rows: list[dict[str, object]]) -> dict[tuple[str, str], int]:
    return {(str(r["subscriptionId"]), str(r["apimService"])): int(str(r["requests"])) for r in rows}


def test_only_the_named_services_rows(seeded: Settings) -> None:
    api = Api(seeded, now=NOW)
    body = api.get("/api/usage", [*MONTH, ("apimService", "apim-weu"), ("groupBy", "subscription")]).json()
    assert by_pair(body["rows"]) == expected({"apim-weu"})
    assert body["totals"]["requests"] == sum(expected({"apim-weu"}).values())
    assert body["filters"]["apimService"] == ["apim-weu"]

    # repeated, comma-separated and in any case: the same filter
    repeated = api.get("/api/usage", [*MONTH, ("apimService", "APIM-WEU"), ("apimService", "apim-eus")]).json()
    commas = api.get("/api/usage", [*MONTH, ("apimService", " apim-weu, Apim-Eus ,apim-weu")]).json()
    assert repeated["rows"] == commas["rows"] and by_pair(commas["rows"]) == expected({"apim-weu", "apim-eus"})
    assert commas["filters"]["apimService"] == ["apim-weu", "apim-eus"]

    # with a subscription: that subscription on that gateway only
    one = api.get("/api/usage", [*MONTH, ("subscription", "team-a"), ("apimService", "apim-eus")]).json()
    assert by_pair(one["rows"]) == expected({"apim-eus"}, {"team-a"})

    # grouped by service alone: one row per named gateway, none for the service-less rows
    gateways = api.get("/api/usage", [*MONTH, ("apimService", "apim-weu,apim-eus"), ("groupBy", "apimService")]).json()
    assert {r["apimService"]: r["requests"] for r in gateways["rows"]} == {
        name: sum(n for (_, service), n in expected({name}).items()) for name in ("apim-weu", "apim-eus")}

    # without the filter every row, the service-less ones included
    everything = api.get("/api/usage", [*MONTH, ("groupBy", "subscription")]).json()
    assert by_pair(everything["rows"]) == expected(set(SERVICES))


def test_paged_and_csv_with_the_filter(seeded: Settings) -> None:
    api = Api(seeded, now=NOW)
    params = [("from", "2026-11-01"), ("to", "2026-11-30"), ("granularity", "hour"), ("apimService", "apim-eus")]
    whole = api.get("/api/usage", [*params, ("pageSize", "5000")]).json()
    rows, bodies = api.all_pages([*params, ("pageSize", "3")])
    assert rows == whole["rows"] and len(rows) == 2 * len(HOURS) and len(bodies) == 3
    assert {r["apimService"] for r in rows} == {"apim-eus"}

    # the token is bound to the filter: continuing it with another service is a 400
    first = api.get("/api/usage", [*params, ("pageSize", "3")]).json()
    other = [*params[:-1], ("apimService", "apim-weu"), ("pageSize", "3"), ("next", first["next"])]
    refused = api.get("/api/usage", other)
    assert refused.status_code == 400 and refused.json()["error"]["parameter"] == "next"

    text = api.get("/api/usage", [*params, ("format", "csv")]).text
    streamed = list(csv.DictReader(io.StringIO(text)))
    assert len(streamed) == len(rows) and {r["apimService"] for r in streamed} == {"apim-eus"}
    assert sum(int(r["requests"]) for r in streamed) == sum(expected({"apim-eus"}).values())


def test_at_most_200_values_and_unknown_spellings_refused(seeded: Settings) -> None:
    api = Api(seeded, now=NOW)
    names = [f"apim-{n}" for n in range(201)]
    refused = api.get("/api/usage", [*MONTH, ("apimService", ",".join(names))])
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["parameter"] == "apimService" and "at most 200 values" in error["message"]
    # 200 (repeated and comma-separated together) is within the limit
    accepted = api.get("/api/usage", [*MONTH, ("apimService", ",".join(names[:150])),
                                      *(("apimService", name) for name in names[150:200])])
    assert accepted.status_code == 200, accepted.text
    # a misspelt parameter is still an unknown one, not a filter
    unknown = api.get("/api/usage", [*MONTH, ("apimservice", "apim-weu")])
    assert unknown.status_code == 400 and unknown.json()["error"]["parameter"] == "apimservice"
