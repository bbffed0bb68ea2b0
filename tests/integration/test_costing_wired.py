"""Cost as Azure bills it, end to end through Azurite: the deployments route and commands, the price
sync command against a loopback feed, negotiated rates, and the chargeback JSON / CSV (old columns kept,
split columns added).  Expected amounts are computed here from the feed's prices (per 1M tokens)."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shared.composition import meter_price_store, table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.settings import Settings
from shared.tooling.cli import main
from tests.billing_support import ADMIN_KEY, call

NOV = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 2, tzinfo=UTC)
FEED = Path(__file__).resolve().parents[1] / "data" / "retail-examples.json"
M = Decimal(1_000_000)
OLD_COLUMNS = ["month", "subscriptionId", "requests", "promptTokens", "cachedTokens", "completionTokens",
               "totalTokens", "errorRequests", "unmeteredRequests", "cost", "currency", "unpricedTokens",
               "unpricedModels"]


@pytest.fixture
def admin(settings: Settings) -> Settings:
    return settings.with_overrides(ADMIN_API_KEY=ADMIN_KEY)


@pytest.fixture
def settings_file(tmp_path: Path, admin: Settings) -> Path:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": admin._values}))
    return path


def seed(settings: Settings) -> None:
    """team-a on `chat` (catalogued), team-b on `legacy` (not in the catalog), 10 days of November."""
    days = []
    for d in range(10):
        start = NOV + timedelta(days=d)
        days.append(UsageRow(Granularity.DAY, start, UsageKey("team-a", "p", "gpt-4o-2024-08-06", "chat"),
                             Counters(requests=1, prompt_tokens=100_000, cached_tokens=20_000,
                                      completion_tokens=30_000, total_tokens=130_000)))
        days.append(UsageRow(Granularity.DAY, start, UsageKey("team-b", "p", "gpt-4o-2024-08-06", "legacy"),
                             Counters(requests=1, prompt_tokens=50_000, completion_tokens=5_000, total_tokens=55_000)))
    table_store(settings).upsert([*days, *merge(days, Granularity.MONTH)])


def chargeback_csv(settings: Settings) -> list[dict[str, str]]:
    response = call(settings, "GET", "/api/chargeback?month=2026-11&format=csv", now=NOW)
    assert response.status_code == 200, response.text
    reader = csv.DictReader(io.StringIO(response.text))
    assert reader.fieldnames is not None and reader.fieldnames[:len(OLD_COLUMNS)] == OLD_COLUMNS
    assert {"costInput", "costCachedInput", "costOutput", "costDataZone", "costUncatalogued", "costBasis",
            "costPayg", "costOverride", "priceAsOf", "uncatalogued"} <= set(reader.fieldnames)
    return list(reader)


def test_deployment_route_then_chargeback_prices_per_meter(admin: Settings) -> None:
    body = {"model": "gpt-4o", "version": "2024-08-06", "sku": "DataZoneStandard", "region": "eastus2",
            "from": "2026-10-01"}
    refused = call(admin, "PUT", "/api/deployments/chat", now=NOW, json=body)
    assert refused.status_code == 401
    stored = call(admin, "PUT", "/api/deployments/chat", now=NOW, key=ADMIN_KEY, json=body)
    assert stored.status_code == 200 and stored.json()["deploymentType"] == "datazone"
    bad = call(admin, "PUT", "/api/deployments/ptu", now=NOW, key=ADMIN_KEY,
               json={**body, "sku": "GlobalProvisionedManaged"})
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "ptu"
    listed = call(admin, "GET", "/api/deployments", now=NOW).json()["deployments"]
    assert [(d["name"], d["sku"], d["effectiveFrom"]) for d in listed] == [
        ("chat", "DataZoneStandard", "2026-10-01T00:00:00Z")]
    seed(admin)
    rows = {row["subscriptionId"]: row for row in chargeback_csv(admin)}
    # Data Zone 2.75 / 1.375 / 11.00 per 1M, read back from the stored rows' counts (10 days)
    team_a = 10 * (80_000 * Decimal("2.75") + 20_000 * Decimal("1.375") + 30_000 * Decimal("11.00")) / M
    assert Decimal(rows["team-a"]["cost"]) == team_a == Decimal(rows["team-a"]["costDataZone"])
    assert Decimal(rows["team-a"]["costCachedInput"]) == 10 * 20_000 * Decimal("1.375") / M
    assert rows["team-a"]["costBasis"] == "payg" and rows["team-a"]["priceAsOf"] == "2025-08-25"
    # `legacy` is not catalogued: priced by model name (prices.default.json gpt-4o 2.50 / 10.00), reported
    team_b = 10 * (50_000 * Decimal("2.50") + 5_000 * Decimal("10.00")) / M
    assert Decimal(rows["team-b"]["cost"]) == team_b == Decimal(rows["team-b"]["costUncatalogued"])
    assert rows["team-b"]["uncatalogued"] == "legacy"
    document = call(admin, "GET", "/api/chargeback?month=2026-11", now=NOW).json()
    assert Decimal(document["totals"]["cost"]) == team_a + team_b
    assert document["priceAsOf"] == "2025-07-01"  # the oldest price list used (the price file's)
    usage = call(admin, "GET", "/api/usage?from=2026-11-01&to=2026-11-30&granularity=month&groupBy=subscription",
                 now=NOW).json()
    by_sub = {row["subscriptionId"]: row for row in usage["rows"]}
    assert Decimal(by_sub["team-a"]["costDataZone"]) == team_a and by_sub["team-b"]["uncatalogued"] == ["legacy"]


def test_commands_set_list_override_and_report(settings_file: Path, admin: Settings,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--settings", str(settings_file)]
    assert main([*args, "deployments", "set", "chat", "--model", "gpt-4o", "--version", "2024-08-06", "--sku",
                 "GlobalStandard", "--region", "eastus2", "--from", "2026-10-01"]) == 0
    assert main([*args, "deployments", "set", "chat", "--model", "gpt-4o", "--version", "2024-08-06", "--sku",
                 "DataZoneStandard", "--region", "eastus2", "--from", "2026-11-06"]) == 0
    assert main([*args, "deployments", "set", "x", "--model", "gpt-4o", "--version", "bad", "--sku",
                 "GlobalStandard", "--region", "eastus2"]) == 2
    assert main([*args, "prices", "override", "set", "--model", "gpt-4o", "--type", "datazone", "--from",
                 "2026-01-01", "--discount", "10"]) == 0
    capsys.readouterr()
    assert main([*args, "deployments", "list", "chat"]) == 0
    history = capsys.readouterr().out.splitlines()
    assert len(history) == 2 and "GlobalStandard" in history[0] and "DataZoneStandard" in history[1]
    seed(admin)
    assert main([*args, "report", "chargeback", "--month", "2026-11", "--csv"]) == 0
    rows = {row["subscriptionId"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    # 5 days Global (2.50 / 1.25 / 10.00), then 5 days Data Zone at 10 % off (2.475 / 1.2375 / 9.90)
    global_days = 5 * (80_000 * Decimal("2.50") + 20_000 * Decimal("1.25") + 30_000 * Decimal("10.00")) / M
    override_days = 5 * (80_000 * Decimal("2.475") + 20_000 * Decimal("1.2375") + 30_000 * Decimal("9.90")) / M
    team_a = rows["team-a"]
    assert Decimal(team_a["cost"]) == global_days + override_days
    assert Decimal(team_a["costOverride"]) == override_days and Decimal(team_a["costPayg"]) == global_days
    assert team_a["costBasis"] == "payg;override"
    list_days = 5 * (80_000 * Decimal("2.75") + 20_000 * Decimal("1.375") + 30_000 * Decimal("11.00")) / M
    assert Decimal(team_a["listCost"]) == global_days + list_days


# -- price sync against a loopback feed ------------------------------------------------------------
class Feed:
    """The Retail Prices API on 127.0.0.1: the 27 real rows on two pages; page 2 can be made to fail."""

    def __init__(self) -> None:
        self.items = [entry["row"] for entry in json.loads(FEED.read_text())["rows"]]
        self.fail_page_two = False
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                second = "page=2" in self.path
                if second and feed.fail_page_two:
                    self.send_response(500)
                    self.end_headers()
                    return
                half = len(feed.items) // 2
                base = f"http://127.0.0.1:{feed.port}/api/retail/prices"
                document: dict[str, Any] = {
                    "BillingCurrency": "USD", "Items": feed.items[half:] if second else feed.items[:half],
                    "NextPageLink": None if second else f"{base}?api-version=2023-01-01-preview&page=2"}
                payload = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/retail/prices"


@pytest.fixture
def feed() -> Iterator[Feed]:
    served = Feed()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_prices_sync_command_twice_is_one_book_and_a_failed_page_changes_nothing(
        settings_file: Path, admin: Settings, feed: Feed, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--settings", str(settings_file), "prices", "sync", "--feed-url", feed.url]
    assert main(args) == 0
    first = meter_price_store(admin).load("USD")
    assert len(first.book.rows) == 27 and "27 new price row(s)" in capsys.readouterr().out
    assert main(args) == 0
    again = meter_price_store(admin).load("USD")
    assert again.book.rows == first.book.rows and again.generation == first.generation
    feed.fail_page_two = True
    assert main(args) == 1
    assert meter_price_store(admin).load("USD").generation == first.generation
