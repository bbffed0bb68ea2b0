"""The FOCUS export and cost centers end to end on Azurite: usage stored as the rollup stores it, the
catalog and cost centers set through the routes and commands, then the export read back.

Every row of a real export is checked against the FOCUS 1.2 column list shipped with the tests
(tests/data/focus-1.2-columns.tsv, not the exporter's own list): every mandatory column present,
no empty value in a non-nullable one, ``ListUnitPrice × PricingQuantity = ListCost`` exactly,
ISO 8601 UTC moments with ``Z``, charge periods inside the billing period with exclusive ends; and
the sum of ``BilledCost`` is the ``/api/chargeback`` JSON total to the last digit.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.composition import table_store
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, merge
from shared.settings import Settings
from shared.tooling.cli import main
from tests.billing_support import ADMIN_KEY, call
from tests.integration.test_subscription_sync import arm  # noqa: F401  (the loopback ARM fixture)

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 2, tzinfo=UTC)
ACCOUNT = "/subscriptions/0000-1111/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/aoai-east"
APIM = "/subscriptions/0000-1111/resourceGroups/rg-apim/providers/Microsoft.ApiManagement/service/apim-ai"
TSV = Path(__file__).resolve().parents[1] / "data" / "focus-1.2-columns.tsv"
MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def focus_spec() -> dict[str, tuple[str, str, bool]]:
    """name -> (level, type, nullable), as the specification lists them."""
    spec = {}
    for line in TSV.read_text(encoding="utf-8").splitlines():
        name, level, kind, nullable, *_ = line.split("\t")
        spec[name] = (level, kind, nullable == "True")
    return spec


@pytest.fixture
def admin(settings: Settings) -> Settings:
    return settings.with_overrides(ADMIN_API_KEY=ADMIN_KEY, APIM_RESOURCE_ID=APIM)


@pytest.fixture
def settings_file(tmp_path: Path, admin: Settings) -> Path:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": admin._values}))
    return path


def hour_rows() -> Iterator[UsageRow]:
    """team-a and team-b on `chat` (pay as you go), days 1-6, two hours a day; team-a on `ptu` on the 28th."""
    for day in range(6):
        for hour in (9, 15):
            start = NOV + timedelta(days=day, hours=hour)
            yield UsageRow(Granularity.HOUR, start, UsageKey("team-a", "p1", "gpt-4o-2024-08-06", "chat"),
                           Counters(requests=3, prompt_tokens=123_457 + day, cached_tokens=20_001,
                                    completion_tokens=30_011 + hour, total_tokens=153_468 + day + hour))
            yield UsageRow(Granularity.HOUR, start, UsageKey("team-b", "p2", "gpt-4o-2024-08-06", "chat"),
                           Counters(requests=1, prompt_tokens=7_777, completion_tokens=333, total_tokens=8_110))
    start = datetime(2026, 11, 28, 10, tzinfo=UTC)
    yield UsageRow(Granularity.HOUR, start, UsageKey("team-a", "p1", "gpt-4o-2024-08-06", "ptu"),
                   Counters(requests=5, prompt_tokens=40_000, completion_tokens=10_000, total_tokens=50_000))


def seed(settings: Settings) -> None:
    hours = list(hour_rows())
    table_store(settings).upsert([*hours, *merge(hours, Granularity.DAY), *merge(hours, Granularity.MONTH)])


def catalog(settings_file: Path) -> None:
    args = ["--settings", str(settings_file), "deployments", "set"]
    assert main([*args, "chat", "--model", "gpt-4o", "--version", "2024-08-06", "--sku", "GlobalStandard",
                 "--region", "eastus2", "--from", "2026-10-01", "--account", ACCOUNT]) == 0
    assert main([*args, "ptu", "--model", "gpt-4o", "--version", "2024-08-06", "--sku", "GlobalProvisionedManaged",
                 "--region", "eastus2", "--ptu", "15", "--from", "2026-11-28", "--account", ACCOUNT]) == 0


def focus_csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def check_focus_rows(rows: list[dict[str, str]]) -> Decimal:
    """Every FOCUS rule on every row; the sum of BilledCost."""
    spec = focus_spec()
    assert rows, "an export without rows proves nothing"
    mandatory = [name for name, (level, _, _) in spec.items() if level == "Mandatory"]
    assert len(mandatory) == 21 and set(mandatory) <= set(rows[0])
    unknown = [name for name in rows[0] if name not in spec and not name.startswith("x_")]
    assert not unknown, f"columns neither FOCUS nor x_: {unknown}"
    total = Decimal(0)
    for index, row in enumerate(rows):
        for name, value in row.items():
            if name in spec and not spec[name][2]:
                assert value != "", f"row {index}: non-nullable {name} is empty"
        for name in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
            assert MOMENT.match(row[name]), (index, name, row[name])
        assert row["BillingPeriodStart"] == "2026-11-01T00:00:00Z" and row["BillingPeriodEnd"] == "2026-12-01T00:00:00Z"
        start, end = (datetime.fromisoformat(row[n].replace("Z", "+00:00")) for n in ("ChargePeriodStart",
                                                                                        "ChargePeriodEnd"))
        assert NOV <= start < end <= DEC, (index, start, end)
        assert end - start in (timedelta(days=1), timedelta(hours=1)), (index, start, end)
        if row["ListUnitPrice"]:
            assert Decimal(row["ListUnitPrice"]) * Decimal(row["PricingQuantity"]) == Decimal(row["ListCost"]), index
        if row["ContractedUnitPrice"]:
            assert Decimal(row["ContractedUnitPrice"]) * Decimal(row["PricingQuantity"]) == \
                Decimal(row["ContractedCost"]), index
        assert row["ServiceCategory"] == "AI and Machine Learning" and row["ChargeCategory"] == "Usage"
        total += Decimal(row["BilledCost"])
    return total


def test_focus_export_through_the_route_adds_up_to_the_chargeback_and_carries_cost_centers(
        admin: Settings, settings_file: Path, tmp_path: Path) -> None:
    catalog(settings_file)
    seed(admin)
    put = call(admin, "PUT", "/api/subscriptions/team-a", now=NOW, key=ADMIN_KEY,
               json={"costCenter": "CC-4711", "owner": "alice@contoso.com", "tags": {"env": "prod"}})
    assert put.status_code == 200, put.text
    assert put.json()["costCenter"] == "CC-4711" and put.json()["tags"] == {"env": "prod"}

    response = call(admin, "GET", "/api/chargeback?month=2026-11&format=focus", now=NOW)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = focus_csv_rows(response.text)
    focus_total = check_focus_rows(rows)
    chargeback = call(admin, "GET", "/api/chargeback?month=2026-11", now=NOW).json()
    assert focus_total == Decimal(chargeback["totals"]["cost"]) > 0

    # the grain: subscription x deployment x meter kind x day for tokens, hours for the provisioned deployment
    token_keys = [(r["x_ApimSubscription"], r["x_Deployment"], r["x_TokenKind"], r["ChargePeriodStart"])
                  for r in rows if r["x_Deployment"] == "chat"]
    assert len(token_keys) == len(set(token_keys)) == 2 * 6 + 6 * 3  # team-b: input, output; team-a: + cached
    ptu = [r for r in rows if r["x_Deployment"] == "ptu"]
    idle = [r for r in ptu if r["x_ApimSubscription"] == "unallocated-capacity"]
    # every provisioned hour is idle but the one team-a used (its share is the whole hour: nobody else used it)
    assert len(idle) == 3 * 24 - 1 and {r["x_AllocationMethod"] for r in idle} == {"unallocated"}
    assert "2026-11-28T10:00:00Z" not in {r["ChargePeriodStart"] for r in idle}
    assert [r["ChargePeriodStart"] for r in ptu if r["x_ApimSubscription"] == "team-a"] == ["2026-11-28T10:00:00Z"]
    assert {r["ResourceId"] for r in rows} == {f"{ACCOUNT}/deployments/chat", f"{ACCOUNT}/deployments/ptu"}
    team_a = [r for r in rows if r["x_ApimSubscription"] == "team-a"]
    assert {r["x_CostCenter"] for r in team_a} == {"CC-4711"} and {r["Tags"] for r in team_a} == {'{"env":"prod"}'}
    assert {r["x_CostCenter"] for r in rows if r["x_ApimSubscription"] == "team-b"} == {""}
    assert {r["BillingAccountId"] for r in rows} == {APIM} and {r["BillingAccountName"] for r in rows} == {
        "APIM chargeback (apim-ai)"}

    # the same month as parquet (pyarrow is in the local extras): the same rows, the same total
    pq = pytest.importorskip("pyarrow.parquet")
    parquet = call(admin, "GET", "/api/chargeback?month=2026-11&format=focus-parquet", now=NOW)
    assert parquet.status_code == 200 and parquet.headers["content-type"] == "application/vnd.apache.parquet"
    (tmp_path / "focus.parquet").write_bytes(parquet.content)
    table = pq.read_table(str(tmp_path / "focus.parquet")).to_pylist()
    assert len(table) == len(rows) and sum(r["BilledCost"] for r in table) == focus_total


def test_focus_command_file_and_hubs_layout(admin: Settings, settings_file: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyarrow")
    from shared.adapters.focus_files import read_focus_parquet

    catalog(settings_file)
    seed(admin)
    args = ["--settings", str(settings_file), "report", "focus", "--month", "2026-11"]
    assert main([*args, "--out", str(tmp_path / "nov.csv")]) == 0
    rows = focus_csv_rows((tmp_path / "nov.csv").read_text(encoding="utf-8"))
    total = check_focus_rows(rows)
    assert main([*args, "--format", "parquet"]) == 2  # binary needs a file
    hubs = tmp_path / "ingestion"
    assert main([*args, "--format", "parquet", "--hubs-layout", str(hubs), "--scope", "apim/contoso"]) == 0
    folder = hubs / "Costs" / "2026" / "11" / "apim" / "contoso"
    files = sorted(p.name for p in folder.iterdir())
    assert files[-1] == "manifest.json" and (folder / "manifest.json").read_bytes() == b""
    parquet_files = [name for name in files if name.endswith("__apim-chargeback.parquet")]
    assert len(parquet_files) == 1
    read_back = read_focus_parquet(folder / parquet_files[0])
    billed = [r["BilledCost"] for r in read_back]
    assert all(isinstance(b, Decimal) for b in billed) and len(billed) == len(rows)
    assert sum(b for b in billed if isinstance(b, Decimal)) == total
    capsys.readouterr()
    assert main([*args]) == 0  # CSV to stdout by default
    captured = capsys.readouterr()
    assert focus_csv_rows(captured.out) == rows and f"BilledCost total {total}" in captured.err


def test_cost_centers_by_command_and_route_group_the_chargeback(admin: Settings, settings_file: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    catalog(settings_file)
    seed(admin)
    base = ["--settings", str(settings_file), "subscriptions"]
    assert main([*base, "set", "team-a", "--cost-center", "CC-1", "--owner", "alice", "--tag", "env=prod"]) == 0
    assert main([*base, "set", "team-b", "--cost-center", "CC-2", "--tag", "bad"]) == 2  # NAME=VALUE
    assert main([*base, "set", "team-b", "--cost-center", "CC-2"]) == 0
    assert "not been listed by ARM" in capsys.readouterr().out
    assert main([*base, "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["subscriptionId"], r["costCenter"], r["owner"], r["tags"]) for r in listed] == [
        ("team-a", "CC-1", "alice", {"env": "prod"}), ("team-b", "CC-2", "", {})]

    refused = call(admin, "PUT", "/api/subscriptions/team-b", now=NOW, json={"costCenter": "CC-9"})
    assert refused.status_code == 401
    bad = call(admin, "PUT", "/api/subscriptions/team-b", now=NOW, key=ADMIN_KEY, json={"costcentre": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "costcentre"
    moved = call(admin, "PUT", "/api/subscriptions/team-b", now=NOW, key=ADMIN_KEY, json={"costCenter": "CC-1"})
    assert moved.status_code == 200 and moved.json()["costCenter"] == "CC-1"
    listed_api = call(admin, "GET", "/api/subscriptions?costCenter=CC-1", now=NOW).json()["subscriptions"]
    assert [r["subscriptionId"] for r in listed_api] == ["team-a", "team-b"]

    plain = call(admin, "GET", "/api/chargeback?month=2026-11", now=NOW).json()
    by_sub = {line["subscriptionId"]: line for line in plain["subscriptions"]}
    assert by_sub["team-a"]["costCenter"] == "CC-1" and by_sub["team-a"]["owner"] == "alice"
    grouped = call(admin, "GET", "/api/chargeback?month=2026-11&groupBy=costCenter", now=NOW).json()
    centers = {line["costCenter"]: line for line in grouped["costCenters"]}
    assert set(centers) == {"CC-1", "unallocated-capacity"}
    assert centers["CC-1"]["subscriptions"] == ["team-a", "team-b"]
    assert Decimal(centers["CC-1"]["cost"]) == Decimal(by_sub["team-a"]["cost"]) + Decimal(by_sub["team-b"]["cost"])
    assert sum(Decimal(line["cost"]) for line in centers.values()) == Decimal(plain["totals"]["cost"])
    assert centers["CC-1"]["requests"] == by_sub["team-a"]["requests"] + by_sub["team-b"]["requests"]

    grouped_csv = call(admin, "GET", "/api/chargeback?month=2026-11&groupBy=costCenter&format=csv", now=NOW)
    assert [r["costCenter"] for r in csv.DictReader(io.StringIO(grouped_csv.text))] == ["CC-1",
                                                                                       "unallocated-capacity"]
    plain_csv = list(csv.DictReader(io.StringIO(call(admin, "GET", "/api/chargeback?month=2026-11&format=csv",
                                                       now=NOW).text)))
    assert {(r["subscriptionId"], r["costCenter"], r["owner"]) for r in plain_csv} >= {
        ("team-a", "CC-1", "alice"), ("team-b", "CC-1", "")}
    assert call(admin, "GET", "/api/chargeback?month=2026-11&groupBy=model", now=NOW).status_code == 400
    capsys.readouterr()
    assert main(["--settings", str(settings_file), "report", "chargeback", "--month", "2026-11", "--csv"]) == 0
    command_csv = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["subscriptionId"], r["costCenter"], r["owner"], r["cost"]) for r in command_csv] == [
        (r["subscriptionId"], r["costCenter"], r["owner"], r["cost"]) for r in plain_csv]
    assert call(admin, "GET", "/api/chargeback?month=2026-11&format=xml", now=NOW).status_code == 400


def test_subscription_sync_through_the_composition_root(admin: Settings, tmp_path: Path,
                                                        arm: tuple[Any, Path]) -> None:  # noqa: F811
    """The wiring the command uses (composition.subscription_sync_service) against the loopback ARM."""
    from shared.composition import subscription_store, subscription_sync_service
    from tests.fakes import FakeCredential
    from tests.integration.test_subscription_sync import SERVICE_ID, subscription_json

    fake, certificate = arm
    fake.pages = [[subscription_json("team-a", "Search team"), subscription_json("team-b", None)]]
    service = subscription_sync_service(admin.with_overrides(ARM_ENDPOINT=fake.base), credential=FakeCredential("fake"),
                                        connection_verify=str(certificate))
    report = service.sync(SERVICE_ID)
    assert [r.subscription_id for r in report.added] == ["team-a", "team-b"]
    assert subscription_store(admin).get("TEAM-A") is not None  # ids compare case-insensitively
    assert subscription_store(admin).get("team-a").display_name == "Search team"  # type: ignore[union-attr]


def test_usage_grouped_by_cost_center_pages_and_streams(admin: Settings, settings_file: Path) -> None:
    catalog(settings_file)
    seed(admin)
    for sid, center in (("team-a", "CC-1"), ("team-b", "CC-2")):
        assert call(admin, "PUT", f"/api/subscriptions/{sid}", now=NOW, key=ADMIN_KEY,
                    json={"costCenter": center}).status_code == 200
    month = "/api/usage?from=2026-11-01&to=2026-11-30&granularity=month"
    by_sub = {row["subscriptionId"]: row for row in
              call(admin, "GET", f"{month}&groupBy=subscription", now=NOW).json()["rows"]}
    first = call(admin, "GET", f"{month}&groupBy=costCenter&pageSize=1", now=NOW).json()
    assert first["groupBy"] == ["costCenter"] and first["rowCount"] == 2 and first["next"]
    second = call(admin, "GET", f"{month}&groupBy=costCenter&pageSize=1&next={first['next']}", now=NOW).json()
    rows = {row["costCenter"]: row for row in [*first["rows"], *second["rows"]]}
    assert set(rows) == {"CC-1", "CC-2"} and second["next"] is None
    for sid, center in (("team-a", "CC-1"), ("team-b", "CC-2")):
        assert rows[center]["cost"] == by_sub[sid]["cost"] and rows[center]["totalTokens"] == by_sub[sid]["totalTokens"]
    # a cost center with several subscriptions sums them, per model, in the streamed CSV too
    assert call(admin, "PUT", "/api/subscriptions/team-b", now=NOW, key=ADMIN_KEY,
                json={"costCenter": "CC-1"}).status_code == 200
    streamed = call(admin, "GET", f"{month}&groupBy=costCenter,model&format=csv", now=NOW)
    lines = list(csv.DictReader(io.StringIO(streamed.text)))
    assert [(r["costCenter"], r["model"]) for r in lines] == [("CC-1", "gpt-4o-2024-08-06")]
    assert Decimal(lines[0]["cost"]) == Decimal(by_sub["team-a"]["cost"]) + Decimal(by_sub["team-b"]["cost"])
    assert call(admin, "GET", f"{month}&groupBy=team", now=NOW).status_code == 400
