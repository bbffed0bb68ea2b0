"""Prices and cost: pure rules, then cost in /api/usage, /api/chargeback and the CLI on Azurite."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from shared.composition import table_store
from shared.core.pricing import (
    display,
)
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.services.costing import PriceCatalog
from shared.settings import Settings
from shared.tooling.cli import main
from tests.billing_support import (
    ALPHA_MINI,
    ALPHA_NEW,
    ALPHA_OLD,
    EMBED,
    call,
    expected_cost,
    with_prices,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


# -- on Azurite -------------------------------------------------------------------------------------
@pytest.fixture
def priced(settings: Settings, tmp_path: Path) -> Settings:
    """team-a on alpha before and after the 16th (plus an unpriced model), team-b on alpha-mini + embed."""
    settings = with_prices(settings, tmp_path)
    hours = []
    for day, hour in ((10, 9), (10, 15), (20, 9), (20, 15)):
        at = datetime(2026, 11, day, hour, tzinfo=UTC)
        hours.append(UsageRow(Granularity.HOUR, at, UsageKey("team-a", "p1", "alpha-2026-08-01", "alpha"),
                              Counters(requests=3, prompt_tokens=123_457 * day, cached_tokens=1_024 * hour,
                                       completion_tokens=9_999 * hour, total_tokens=123_457 * day + 9_999 * hour)))
    hours.append(UsageRow(Granularity.HOUR, datetime(2026, 11, 10, 9, tzinfo=UTC),
                          UsageKey("team-a", "p1", "mystery-model", "mystery"),
                          Counters(requests=1, prompt_tokens=700, completion_tokens=300, total_tokens=1_000)))
    for model, prompt, completion in (("alpha-mini-2026-07-18", 2_000_003, 444_444), ("embed", 5_555_555, 0)):
        hours.append(UsageRow(Granularity.HOUR, datetime(2026, 11, 12, 8, tzinfo=UTC),
                              UsageKey("team-b", "p2", model, model),
                              Counters(requests=2, prompt_tokens=prompt, completion_tokens=completion,
                                       cached_tokens=0, total_tokens=prompt + completion)))
    store = table_store(settings)
    store.upsert(hours)
    store.upsert(merge(hours, Granularity.DAY))
    store.upsert(merge(hours, Granularity.MONTH))
    return settings


def expected_team_costs() -> dict[str, Decimal]:
    team_a = Decimal(0)
    for day, hour in ((10, 9), (10, 15), (20, 9), (20, 15)):
        price = ALPHA_OLD if day < 16 else ALPHA_NEW
        team_a += expected_cost(123_457 * day, 1_024 * hour, 9_999 * hour, price)
    team_b = expected_cost(2_000_003, 0, 444_444, ALPHA_MINI) + expected_cost(5_555_555, 0, 0, EMBED)
    return {"team-a": team_a, "team-b": team_b}


def test_usage_rows_and_totals_carry_cost(priced: Settings) -> None:
    expected = expected_team_costs()
    body = call(priced, "GET", "/api/usage", now=NOW, params={"granularity": "month"}).json()
    by_model = {(r["subscriptionId"], r["model"]): r for r in body["rows"]}
    # the month row spans the price change: priced from its day rows
    alpha = by_model[("team-a", "alpha-2026-08-01")]
    assert Decimal(alpha["cost"]) == expected["team-a"] and alpha["currency"] == "EUR"
    mystery = by_model[("team-a", "mystery-model")]
    assert mystery["cost"] == "0.00" and mystery["unpricedTokens"] == 1_000
    totals = body["totals"]
    assert Decimal(totals["cost"]) == expected["team-a"] + expected["team-b"]
    assert totals["unpricedTokens"] == 1_000 and totals["unpricedModels"] == ["mystery-model"]
    # day and hour granularity give the same total cost
    for granularity in ("day", "hour"):
        other = call(priced, "GET", "/api/usage", now=NOW, params={"granularity": granularity}).json()
        assert Decimal(other["totals"]["cost"]) == Decimal(totals["cost"])
    days = call(priced, "GET", "/api/usage", now=NOW, params={"subscription": "team-a"}).json()["rows"]
    day20 = next(r for r in days if r["periodStart"].startswith("2026-11-20") and r["model"].startswith("alpha"))
    assert Decimal(day20["cost"]) == sum(expected_cost(123_457 * 20, 1_024 * h, 9_999 * h, ALPHA_NEW) for h in (9, 15))


def test_usage_csv_has_cost_columns(priced: Settings) -> None:
    response = call(priced, "GET", "/api/usage", now=NOW, params={"format": "csv", "granularity": "month"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {"cost", "currency", "unpricedTokens", "promptTokens"} <= set(rows[0])
    assert sum(Decimal(r["cost"]) for r in rows) == sum(expected_team_costs().values())


def test_chargeback_json_and_csv_match_independent_costs(priced: Settings) -> None:
    expected = expected_team_costs()
    body = call(priced, "GET", "/api/chargeback", now=NOW, params={"month": "2026-11"}).json()
    assert body["month"] == "2026-11" and body["currency"] == "EUR"
    lines = {line["subscriptionId"]: line for line in body["subscriptions"]}
    assert set(lines) == {"team-a", "team-b"}
    assert Decimal(lines["team-a"]["cost"]) == expected["team-a"]
    assert lines["team-a"]["unpricedTokens"] == 1_000 and lines["team-a"]["unpricedModels"] == ["mystery-model"]
    assert lines["team-b"]["promptTokens"] == 2_000_003 + 5_555_555 and lines["team-b"]["requests"] == 4
    response = call(priced, "GET", "/api/chargeback", now=NOW, params={"month": "2026-11", "format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="chargeback-2026-11.csv"' in response.headers["content-disposition"]
    parsed = {r["subscriptionId"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert {sub: Decimal(r["cost"]) for sub, r in parsed.items()} == expected
    assert parsed["team-a"]["unpricedModels"] == "mystery-model" and parsed["team-a"]["currency"] == "EUR"
    # default month = the current one; an empty month is a well-formed empty report
    assert call(priced, "GET", "/api/chargeback", now=NOW).json()["month"] == "2026-11"
    empty = call(priced, "GET", "/api/chargeback", now=NOW, params={"month": "2026-10"}).json()
    assert empty["subscriptions"] == [] and empty["totals"]["cost"] == "0.00"


@pytest.mark.parametrize(("params", "parameter"), [({"month": "2026-13"}, "month"), ({"month": "11/2026"}, "month"),
                                                   ({"format": "xml"}, "format")])
def test_chargeback_bad_parameters_are_400(priced: Settings, params: dict[str, str], parameter: str) -> None:
    response = call(priced, "GET", "/api/chargeback", now=NOW, params=params)
    assert response.status_code == 400 and response.json()["error"]["parameter"] == parameter


def test_chargeback_needs_the_key(priced: Settings) -> None:
    assert call(priced, "GET", "/api/chargeback", now=NOW, key="").status_code == 401


def settings_file(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": settings._values}))
    return path


def test_cli_chargeback_csv_and_table(priced: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = settings_file(priced, tmp_path)
    assert main(["--settings", str(path), "report", "chargeback", "--month", "2026-11", "--csv"]) == 0
    out = capsys.readouterr().out
    parsed = {r["subscriptionId"]: Decimal(r["cost"]) for r in csv.DictReader(io.StringIO(out))}
    assert parsed == expected_team_costs()
    assert main(["--settings", str(path), "report", "chargeback", "--month", "2026-11"]) == 0
    table = capsys.readouterr().out
    total = sum(expected_team_costs().values(), Decimal(0))
    assert display(total) in table and "mystery-model" in table and "EUR" in table
    assert main(["--settings", str(path), "report", "chargeback", "--month", "2026-xx"]) == 2
    assert "month" in capsys.readouterr().err


def test_price_override_reprices_history_without_rewriting_rows(priced: Settings, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    store = table_store(priced)
    client = store.table_client(store.usage_table)
    before_rows = sorted((e["RowKey"], dict(e)) for e in client.list_entities())
    path = settings_file(priced, tmp_path)
    assert main(["--settings", str(path), "prices", "set", "alpha", "--from", "2026-11-20", "--input", "1",
                 "--cached-input", "0.1", "--output", "4"]) == 0
    capsys.readouterr()
    body = call(priced, "GET", "/api/chargeback", now=NOW, params={"month": "2026-11"}).json()
    team_a = next(line for line in body["subscriptions"] if line["subscriptionId"] == "team-a")
    repriced = sum(expected_cost(123_457 * 10, 1_024 * h, 9_999 * h, ALPHA_OLD) for h in (9, 15)) + \
        sum(expected_cost(123_457 * 20, 1_024 * h, 9_999 * h, ("1", "0.1", "4")) for h in (9, 15))
    assert Decimal(team_a["cost"]) == repriced
    assert "prices table" in body["priceSource"]
    assert sorted((e["RowKey"], dict(e)) for e in client.list_entities()) == before_rows  # nothing rewritten
    prices = call(priced, "GET", "/api/prices", now=NOW).json()
    assert {"model": "alpha", "effectiveFrom": "2026-11-20", "input": "1.00", "cachedInput": "0.10",
            "output": "4.00"} in prices["prices"]
    assert main(["--settings", str(path), "prices", "delete", "alpha", "--from", "2026-11-20"]) == 0
    again = call(priced, "GET", "/api/chargeback", now=NOW, params={"month": "2026-11"}).json()
    assert Decimal(next(x for x in again["subscriptions"] if x["subscriptionId"] == "team-a")["cost"]) == \
        expected_team_costs()["team-a"]
    assert main(["--settings", str(path), "prices", "set", "alpha", "--from", "2026-11-20", "--input", "x",
                 "--cached-input", "0.1", "--output", "4"]) == 2
    assert "input" in capsys.readouterr().err


def test_missing_price_file_names_the_setting(settings: Settings, tmp_path: Path) -> None:
    broken = settings.with_overrides(PRICES_PATH=str(tmp_path / "nope.json"))
    response = call(broken, "GET", "/api/chargeback", now=NOW)
    assert response.status_code == 500 and "nope" not in response.text  # details in the log only
    from shared.errors import SettingError

    with pytest.raises(SettingError, match="PRICES_PATH"):
        PriceCatalog(broken.prices_path).current()
