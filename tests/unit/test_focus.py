"""FOCUS 1.2 rows from cost lines, and the files they are written to (CSV, parquet, FinOps hubs layout).

Every row is checked against the specification's column list (tests/data/focus-1.2-columns.tsv,
copied from shared/pricing): all mandatory columns, no null in a non-nullable column, exact unit
price x quantity = cost, UTC ISO moments, and the BilledCost total = the lines' billed total.
"""

from __future__ import annotations

import csv
import decimal
import io
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.focus_files import (
    FocusFileError,
    ParquetUnavailableError,
    focus_csv_text,
    focus_table,
    hubs_folder,
    read_focus_parquet,
    write_focus_csv,
    write_focus_parquet,
    write_hubs_layout,
)
from shared.core.cost_lines import UNALLOCATED_CAPACITY, CostLine
from shared.core.csv_cells import safe_cell
from shared.core.focus import (
    COLUMN_NAMES,
    COLUMNS,
    DECIMAL_COLUMNS,
    FocusRowError,
    billed_total,
    focus_rows,
)
from shared.errors import ChargebackError
from tests.cost_line_support import (
    ACCOUNT,
    MONTH,
    NEXT_MONTH,
    RESERVATION,
    deployment_id,
    ptu_line,
    token_line,
)

TSV = Path(__file__).resolve().parents[1] / "data" / "focus-1.2-columns.tsv"
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
REQUIRED_CUSTOM = ("x_ApimSubscription", "x_ApimProduct", "x_CostCenter", "x_Model", "x_ModelVersion",
                   "x_DeploymentType", "x_TokenKind", "x_AllocationMethod", "x_PriceAsOf", "x_CostBasis", "x_Unpriced")
EXACT = decimal.Context(prec=80, traps=[decimal.Inexact])


@dataclass(frozen=True)
class Spec:
    name: str
    level: str
    data_type: str
    nullable: bool


def spec() -> dict[str, Spec]:
    rows = {}
    for line in TSV.read_text().splitlines():
        name, level, data_type, nullable, _kind, _version = line.split("\t")
        rows[name] = Spec(name, level, data_type, nullable == "True")
    return rows


@dataclass(frozen=True)
class Team:
    """Shaped like cost_centers.SubscriptionInfo: empty text means no value."""

    cost_center: str = ""
    owner: str = ""
    display_name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    business_unit: str = ""


def lines() -> list[CostLine]:
    return [
        token_line("team-a", 1_234_567, "2.50", tags={"app": "search"}),
        token_line("team-a", 2_000_001, "10.00", kind="output", meter_id="a1b2c3d4-0000-0000-0000-000000000002"),
        token_line("TEAM-B", 500_000, "2.50", contracted_price="2.125", day=4),
        token_line("team-c", 777, None, unpriced_reason="no retail price for model gpt-9 (global standard)"),
        token_line("team-c", 10_000, "2.50", account=None, deployment="uncatalogued"),
        ptu_line("team-a", "0.6", "1.00", reservation=RESERVATION),
        ptu_line(UNALLOCATED_CAPACITY, "0.4", "1.00", reservation=RESERVATION),
        ptu_line("team-b", "1", "1.00", hour=30),
        token_line("team-d", 42, "2.50", deployment="=cmd|' /C calc'!A0", product="@SUM(A1)\x07",
                   tags={"note": "+1 line\nbreak"}),
    ]


CENTERS: dict[str, Any] = {
    "team-a": Team("CC-100", "alice@example.com", "Team A", {"env": "prod", "app": "overridden"}, "Search"),
    "team-b": {"costCenter": "CC-200", "owner": "bob", "displayName": "Team B"},
    "team-d": Team(),
}


def rows() -> list[dict[str, object]]:
    return focus_rows(lines(), MONTH, NEXT_MONTH, "ea-12345", "Contoso EA", CENTERS)


def decimal_sum(values: Iterable[object]) -> Decimal:
    total = Decimal(0)
    with decimal.localcontext(EXACT):
        for value in values:
            assert isinstance(value, Decimal)
            total += value
    return total


def exact_product(a: object, b: object) -> Decimal:
    assert isinstance(a, Decimal) and isinstance(b, Decimal)
    with decimal.localcontext(EXACT):
        return a * b


def test_column_set_is_every_mandatory_column_plus_conditional_and_custom_ones_per_the_spec() -> None:
    columns = spec()
    mandatory = {name for name, s in columns.items() if s.level == "Mandatory"}
    assert len(mandatory) == 21
    assert mandatory <= set(COLUMN_NAMES)
    assert len(set(COLUMN_NAMES)) == len(COLUMN_NAMES)
    for column in COLUMNS:
        if column.name.startswith("x_"):
            assert column.level == "Custom"
            continue
        assert column.name in columns, f"{column.name} is not a FOCUS 1.2 column"
        expected = columns[column.name]
        assert (column.level, column.data_type, column.nullable) == (expected.level, expected.data_type,
                                                                      expected.nullable), column.name
    assert set(REQUIRED_CUSTOM) <= set(COLUMN_NAMES)
    for row in rows():
        assert tuple(row) == COLUMN_NAMES


def test_every_row_keeps_the_focus_invariants() -> None:
    columns = spec()
    for row in rows():
        for name, value in row.items():
            nullable = columns[name].nullable if name in columns else next(c.nullable for c in COLUMNS
                                                                           if c.name == name)
            assert nullable or value is not None, f"{name} is null"
            if name in DECIMAL_COLUMNS and value is not None:
                assert isinstance(value, Decimal), name
        if row["ListUnitPrice"] is not None:
            assert exact_product(row["ListUnitPrice"], row["PricingQuantity"]) == row["ListCost"]
        if row["ContractedUnitPrice"] is not None:
            assert exact_product(row["ContractedUnitPrice"], row["PricingQuantity"]) == row["ContractedCost"]
        for name in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
            assert ISO_UTC.match(str(row[name])), (name, row[name])
        assert str(row["ChargePeriodStart"]) < str(row["ChargePeriodEnd"])  # ISO text sorts as time
        assert (row["BillingPeriodStart"], row["BillingPeriodEnd"]) == ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
        assert row["BillingPeriodStart"] <= row["ChargePeriodStart"]  # type: ignore[operator]
        assert row["ChargePeriodEnd"] <= row["BillingPeriodEnd"]  # type: ignore[operator]
        assert (row["ChargeCategory"], row["ChargeClass"], row["ServiceCategory"], row["ServiceName"]) == (
            "Usage", None, "AI and Machine Learning", "Azure OpenAI")
        assert row["ProviderName"] == row["PublisherName"] == row["InvoiceIssuerName"] == "Microsoft"
        assert row["BilledCost"] == row["EffectiveCost"]
        if row["Tags"] is not None:
            assert isinstance(json.loads(str(row["Tags"])), dict)
        if row["ResourceId"] is None:
            assert row["ResourceName"] is None and row["ResourceType"] is None


def test_billed_total_is_the_lines_billed_total_exactly() -> None:
    priced = [line.billed_cost for line in lines() if line.billed_cost is not None]
    with decimal.localcontext(EXACT):
        expected = sum(priced, Decimal(0))
    assert billed_total(rows()) == expected
    assert decimal_sum(r["BilledCost"] for r in rows()) == expected


def test_an_unpriced_line_costs_zero_says_why_and_is_flagged() -> None:
    all_rows = rows()
    unpriced = [row for row in all_rows if row["x_Unpriced"]]
    assert len(unpriced) == 1
    row = unpriced[0]
    assert row["BilledCost"] == row["ListCost"] == row["ContractedCost"] == row["EffectiveCost"] == Decimal(0)
    assert row["ListUnitPrice"] is None and row["ContractedUnitPrice"] is None and row["SkuPriceId"] is None
    assert str(row["ChargeDescription"]).startswith("UNPRICED (no retail price for model gpt-9 (global standard))")
    assert row["PricingQuantity"] == Decimal("0.000777") and row["ConsumedQuantity"] == Decimal(777)
    assert all(r["x_Unpriced"] is False for r in all_rows if r is not row)


def test_reserved_ptu_hours_are_committed_and_everything_else_standard() -> None:
    by_line = list(zip(lines(), rows(), strict=True))
    for line, row in by_line:
        if line.commitment_discount_id is not None:
            assert row["PricingCategory"] == "Committed"
            assert (row["CommitmentDiscountId"], row["CommitmentDiscountType"], row["CommitmentDiscountCategory"],
                    row["CommitmentDiscountStatus"]) == (RESERVATION, "Reservation", "Usage", "Used")
        else:
            assert row["PricingCategory"] == "Standard"
            assert row["CommitmentDiscountId"] is row["CommitmentDiscountStatus"] is None
    committed = [row for _, row in by_line if row["PricingCategory"] == "Committed"]
    assert [row["x_ApimSubscription"] for row in committed] == ["team-a", UNALLOCATED_CAPACITY]
    assert {row["PricingUnit"] for row in committed} == {"PTU Hours"}


def test_resource_region_meter_and_custom_columns() -> None:
    first = rows()[0]
    assert first["ResourceId"] == deployment_id("chat") and first["ResourceName"] == "chat"
    assert (first["RegionId"], first["RegionName"]) == ("eastus2", "East US 2")
    assert first["SkuPriceId"] == "a1b2c3d4-0000-0000-0000-000000000001"
    assert first["SkuMeter"] == "gpt-4o 2024-08-06 global standard input tokens"
    assert (first["ConsumedQuantity"], first["ConsumedUnit"], first["PricingQuantity"], first["PricingUnit"]) == (
        Decimal(1_234_567), "Tokens", Decimal("1.234567"), "1M Tokens")
    assert (first["x_Model"], first["x_ModelVersion"], first["x_DeploymentType"], first["x_TokenKind"],
            first["x_AllocationMethod"], first["x_CostBasis"], first["x_PriceAsOf"]) == (
        "gpt-4o", "2024-08-06", "global", "input", "metered", "payg", "2026-10-30")
    uncatalogued = rows()[4]
    assert uncatalogued["ResourceId"] is None and uncatalogued["x_Catalogued"] is False
    assert uncatalogued["x_Deployment"] == "uncatalogued"
    override = rows()[2]
    assert (override["ListCost"], override["ContractedCost"], override["BilledCost"]) == (
        Decimal("1.25"), Decimal("1.0625"), Decimal("1.0625"))
    assert override["x_CostBasis"] == "override"


def test_cost_centers_from_objects_or_mappings_case_insensitively() -> None:
    got = {(row["x_ApimSubscription"], row["x_CostCenter"], row["x_CostCenterOwner"], row["x_ApimSubscriptionName"])
           for row in rows()}
    assert ("team-a", "CC-100", "alice@example.com", "Team A") in got
    assert ("TEAM-B", "CC-200", "bob", "Team B") in got  # the log's spelling kept; looked up case-insensitively
    assert ("team-c", None, None, None) in got  # no cost center: null, not ""
    assert ("team-d", None, None, None) in got  # empty text is no value
    tags = json.loads(str(rows()[0]["Tags"]))
    assert tags == {"app": "search", "env": "prod"}  # the line's own tag wins over the cost center default
    assert rows()[0]["x_BusinessUnit"] == "Search"


def test_a_line_breaking_its_price_invariant_is_refused() -> None:
    broken = replace(token_line("team-a", 1_000_001, "2.50"), list_cost=Decimal("2.50"))
    with pytest.raises(FocusRowError, match=re.escape("list unit price 2.50 × pricing quantity 1.000001")):
        focus_rows([broken], MONTH, NEXT_MONTH, "ea", None, {})
    outside = token_line("team-a", 1, "2.50", day=30)
    with pytest.raises(FocusRowError, match="not inside the billing period"):
        focus_rows([outside], MONTH, datetime(2026, 11, 15, tzinfo=UTC), "ea", None, {})
    with pytest.raises(FocusRowError, match="UTC"):
        focus_rows([], MONTH.replace(tzinfo=None), NEXT_MONTH, "ea", None, {})


# -- files ------------------------------------------------------------------------------------------------
def test_csv_quotes_every_field_defuses_formulas_and_keeps_numbers_as_numbers(tmp_path: Path) -> None:
    path = write_focus_csv(tmp_path / "focus.csv", rows())
    text = path.read_bytes().decode("utf-8")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    requoted = io.StringIO()
    csv.writer(requoted, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(parsed)
    assert requoted.getvalue() == text  # every field was quoted
    header, *body = parsed
    assert tuple(header) == COLUMN_NAMES
    records = [dict(zip(header, values, strict=True)) for values in body]
    hostile = records[-1]
    assert hostile["x_Deployment"] == "'=cmd|' /C calc'!A0"
    assert hostile["ResourceName"] == "'=cmd|' /C calc'!A0"
    assert hostile["x_ApimProduct"] == "'@SUM(A1)"  # control character removed too
    assert hostile["x_Unpriced"] == "false" and hostile["ChargeClass"] == ""
    assert sum((Decimal(r["BilledCost"]) for r in records), Decimal(0)) == billed_total(rows())
    for record in records:
        for name in DECIMAL_COLUMNS:
            assert record[name] == "" or Decimal(record[name]).is_finite()
            assert "E" not in record[name]
    negative = dict(rows()[0], BilledCost=Decimal("-1.5"), ChargeDescription="-1.5 credit")
    cells = next(csv.DictReader(io.StringIO(focus_csv_text([negative]))))
    assert cells["BilledCost"] == "-1.5"  # a number, not neutralised
    assert cells["ChargeDescription"] == "'-1.5 credit"


@pytest.mark.parametrize("text, expected", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'x"), ("\r=x", "'=x"),
    ("  =x", "'  =x"), ("a\nb\x00c\u2028d", "abcd"), ("plain", "plain"), ("{\"a\":1}", "{\"a\":1}"),
])
def test_safe_cell(text: str, expected: str) -> None:
    assert safe_cell(text) == expected


def test_parquet_round_trip_is_exact_and_typed(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    original = rows()
    path = write_focus_parquet(tmp_path / "focus.parquet", original)
    schema = pq.read_schema(str(path))
    for column in COLUMNS:
        arrow_type = schema.field(column.name).type
        if column.data_type == "Decimal":
            assert arrow_type == pa.decimal128(38, 18), column.name
        elif column.data_type == "Date/Time":
            assert arrow_type == pa.timestamp("ms", tz="UTC"), column.name
        elif column.data_type == "Boolean":
            assert arrow_type == pa.bool_(), column.name
        else:
            assert arrow_type == pa.string(), column.name
    assert schema.metadata[b"focus_version"] == b"1.2"
    back = read_focus_parquet(path)
    assert len(back) == len(original)
    for got, want in zip(back, original, strict=True):
        for name in COLUMN_NAMES:
            if name.endswith(("PeriodStart", "PeriodEnd")):
                assert got[name] == datetime.strptime(str(want[name]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            else:
                assert got[name] == want[name], name
    assert decimal_sum(r["BilledCost"] for r in back) == billed_total(original)


def test_parquet_refuses_a_decimal_it_would_round(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    too_fine = dict(rows()[0], ListUnitPrice=Decimal("0.1234567890123456789"))
    with pytest.raises(FocusFileError, match=re.escape("ListUnitPrice = 0.1234567890123456789 does not fit")):
        focus_table([too_fine])
    with pytest.raises(FocusFileError, match="BilledCost may not be null"):
        focus_table([dict(rows()[0], BilledCost=None)])


def test_parquet_without_pyarrow_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an install without the local extras looks like
    with pytest.raises(ParquetUnavailableError, match=r"install the local extras") as caught:
        write_focus_parquet(tmp_path / "x.parquet", rows())
    assert isinstance(caught.value, ChargebackError)
    assert not (tmp_path / "x.parquet").exists()
    write_focus_csv(tmp_path / "x.csv", rows())  # CSV needs nothing


def test_hubs_layout_path_manifest_and_replacement(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    scope = "/providers/Microsoft.Billing/billingAccounts/12345/apim-chargeback"
    first = write_hubs_layout(tmp_path, rows(), date(2026, 11, 1), scope, ingestion_id="20261201T0600Z")
    folder = tmp_path / "Costs" / "2026" / "11" / "providers" / "Microsoft.Billing" / "billingAccounts" / "12345" \
        / "apim-chargeback"
    assert folder == hubs_folder(tmp_path, MONTH, scope)
    assert first == folder / "20261201T0600Z__apim-chargeback.parquet"
    assert (folder / "manifest.json").read_bytes() == b""
    assert sorted(p.name for p in folder.iterdir()) == ["20261201T0600Z__apim-chargeback.parquet", "manifest.json"]
    assert billed_total(read_focus_parquet(first)) == billed_total(rows())

    again = write_hubs_layout(tmp_path, rows()[:2], MONTH, scope, ingestion_id="20261202T0600Z")
    assert sorted(p.name for p in folder.iterdir()) == [again.name, "manifest.json"]  # the older ingestion is gone
    assert len(read_focus_parquet(again)) == 2

    december = focus_rows([], NEXT_MONTH, datetime(2027, 1, 1, tzinfo=UTC), "ea", None, {}) + rows()[:1]
    with pytest.raises(FocusFileError, match="is not the month 2026-12"):
        write_hubs_layout(tmp_path, december, NEXT_MONTH, scope, ingestion_id="x")
    assert sorted(p.name for p in folder.iterdir()) == [again.name, "manifest.json"]  # untouched
    for bad_scope in ("", "/", "a/../b", "a//b"):
        with pytest.raises(FocusFileError):
            write_hubs_layout(tmp_path, rows(), MONTH, bad_scope)
    with pytest.raises(FocusFileError, match="may not contain '__'"):
        write_hubs_layout(tmp_path, rows(), MONTH, "apim", ingestion_id="a__b")


def test_accounts_named_in_rows_are_the_catalogued_ones() -> None:
    ids = {row["ResourceId"] for row in rows() if row["ResourceId"]}
    assert all(str(i).startswith(ACCOUNT + "/deployments/") for i in ids)
