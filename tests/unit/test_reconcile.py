"""Reconciliation of Azure's bill (cost exports: FOCUS and classic, CSV and parquet) with the cost lines.

The export files are built here from the documented column sets: Microsoft's FocusCost 1.0
metadata (microsoft/finops-toolkit src/open-data/dataset-metadata/FocusCost_1.0.json) and the
EA 2021-10-01 / MCA cost details schemas (Azure docs, cost-management-billing/dataset-schema).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from shared.adapters.cost_exports import CostExportError, billed_rows, read_cost_export, read_cost_exports
from shared.core.cost_lines import UNALLOCATED_CAPACITY, CostLine
from shared.core.deployments import Deployment, DeploymentCatalog
from shared.core.reconcile import (
    BilledRow,
    Reason,
    ReconciliationLine,
    ReconciliationReport,
    account_of,
    reconcile,
)
from shared.core.reconcile_present import (
    RECONCILIATION_COLUMNS,
    reconciliation_csv,
    reconciliation_json,
    reconciliation_text,
)
from tests.cost_line_support import (
    ACCOUNT,
    METER_INPUT,
    METER_OUTPUT,
    METER_PTU,
    MONTH,
    OTHER_ACCOUNT,
    RESERVATION,
    ptu_line,
    token_line,
)

FOCUS_COLUMNS = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory", "CommitmentDiscountId",
    "CommitmentDiscountName", "CommitmentDiscountStatus", "CommitmentDiscountType", "ConsumedQuantity", "ConsumedUnit",
    "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName", "ListCost", "ListUnitPrice",
    "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName",
    "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId",
    "SubAccountId", "SubAccountName", "SubAccountType", "Tags", "x_BilledCostInUsd", "x_BillingProfileId",
    "x_EffectiveCostInUsd", "x_ResourceGroupName", "x_ResourceType", "x_SkuDescription", "x_SkuDetails",
    "x_SkuMeterCategory", "x_SkuMeterId", "x_SkuMeterName", "x_SkuMeterSubcategory", "x_SkuRegion",
)
EA_COLUMNS = (
    "CostInBillingCurrency", "AccountName", "AccountOwnerId", "ProductName", "ConsumedService", "InvoiceSectionName",
    "SubscriptionId", "SubscriptionName", "Date", "MeterId", "MeterCategory", "MeterSubCategory", "MeterRegion",
    "MeterName", "Quantity", "ResourceLocation", "ResourceId", "ServiceInfo1", "ServiceInfo2", "AdditionalInfo",
    "Tags", "CostCenter", "UnitOfMeasure", "ResourceGroup", "PartNumber", "OfferId", "ChargeType", "EffectivePrice",
    "UnitPrice", "ReservationId", "ReservationName", "ResourceName", "ProductOrderId", "ProductOrderName", "PlanName",
    "PublisherName", "PublisherType", "Term", "BillingAccountId", "BillingAccountName", "BillingProfileName",
    "BillingProfileId", "BillingCurrencyCode", "ServiceFamily", "Frequency", "IsAzureCreditEligible", "PayGPrice",
    "PricingModel", "BillingPeriodStartDate", "BillingPeriodEndDate",
)
MCA_COLUMNS = (
    "invoiceId", "billingAccountId", "billingAccountName", "billingProfileId", "billingProfileName", "costCenter",
    "billingPeriodEndDate", "billingPeriodStartDate", "date", "serviceFamily", "consumedService", "meterId",
    "meterName", "meterCategory", "meterSubCategory", "meterRegion", "ProductName", "SubscriptionId",
    "resourceGroupName", "ResourceId", "resourceLocation", "effectivePrice", "quantity", "unitOfMeasure", "chargeType",
    "billingCurrency", "pricingCurrency", "costInBillingCurrency", "costInUsd", "additionalInfo", "tags", "PayGPrice",
    "pricingModel", "unitPrice",
)
STORAGE = "/subscriptions/0000-1111/resourceGroups/rg-ai/providers/Microsoft.Storage/storageAccounts/logs"
METER_NAMES = {METER_INPUT: "gpt-4o-0806-Inp-glbl Tokens", METER_OUTPUT: "gpt-4o-0806-Outp-glbl Tokens",
               METER_PTU: "Provisioned Managed Global Unit"}


# -- the month's cost lines and bills ----------------------------------------------------------------------
def allocated() -> list[CostLine]:
    return [
        token_line("team-a", 1_234_567, "2.50"),  # 3.0864175
        token_line("team-b", 400_000, "2.50", day=9),  # 1.00
        token_line("team-a", 2_000_000, "10.00", kind="output", meter_id=METER_OUTPUT),  # 20.00
        ptu_line("team-a", "0.6", "1.00", reservation=RESERVATION),
        ptu_line(UNALLOCATED_CAPACITY, "0.4", "1.00", reservation=RESERVATION),
        token_line("team-c", 777, None, unpriced_reason="no retail price"),
    ]


Charge = tuple[str, str | None, str, str]  # resource id, meter id, day (YYYY-MM-DD), cost


def bill_with_gaps() -> list[Charge]:
    """Input within a cent (rounding), output 6.00 above (bypass), PTU exact, a second account unseen."""
    return [
        (ACCOUNT, METER_INPUT, "2026-11-03", "3.09"),
        (ACCOUNT, METER_INPUT, "2026-11-09", "1.00"),
        (ACCOUNT, METER_OUTPUT, "2026-11-03", "26.00"),
        (ACCOUNT, METER_PTU, "2026-11-01", "1.00"),
        (OTHER_ACCOUNT, METER_INPUT, "2026-11-20", "12.34"),
        (STORAGE, "storage-meter", "2026-11-20", "99.00"),  # not Azure OpenAI: left out
        (ACCOUNT, METER_INPUT, "2026-10-31", "50.00"),  # another month: left out
    ]


def discounted_bill() -> list[Charge]:
    """Every token meter billed at 85 % of list (an EA discount); PTU exact."""
    return [
        (ACCOUNT, METER_INPUT, "2026-11-03", "2.623454875"),  # 0.85 x 3.0864175
        (ACCOUNT, METER_INPUT, "2026-11-09", "0.85"),
        (ACCOUNT, METER_OUTPUT, "2026-11-03", "17.00"),
        (ACCOUNT, METER_PTU, "2026-11-01", "1.00"),
    ]


def _account_name(resource_id: str) -> str:
    return resource_id.rstrip("/").split("/")[-1]


def focus_record(charge: Charge) -> dict[str, object]:
    resource_id, meter_id, day, cost = charge
    record: dict[str, object] = dict.fromkeys(FOCUS_COLUMNS, "")
    record.update({
        "BilledCost": cost, "EffectiveCost": cost, "BillingCurrency": "USD", "ChargeCategory": "Usage",
        "ChargePeriodStart": f"{day}T00:00:00Z", "ChargePeriodEnd": f"{day}T23:59:59Z", "ResourceId": resource_id,
        "ResourceName": _account_name(resource_id), "x_SkuMeterId": meter_id,
        "x_SkuMeterName": METER_NAMES.get(meter_id or "", "Hot LRS Data Stored"), "ServiceName": "Azure OpenAI",
        "x_SkuMeterCategory": "Foundry Models", "x_SkuMeterSubcategory": "Azure OpenAI",
        "PricingCategory": "Committed" if meter_id == METER_PTU else "Standard",
        "x_SkuDetails": json.dumps({"a": 1}), "BillingAccountId": "ea-1",
    })
    return record


def classic_record(charge: Charge, columns: Sequence[str]) -> dict[str, object]:
    resource_id, meter_id, day, cost = charge
    year, month, dom = day.split("-")
    lower = {c.lower(): c for c in columns}
    record: dict[str, object] = dict.fromkeys(columns, "")
    values = {"costinbillingcurrency": cost, "date": f"{month}/{dom}/{year}", "meterid": meter_id,
              "metername": METER_NAMES.get(meter_id or "", "Hot LRS Data Stored"), "resourceid": resource_id,
              "metercategory": "Cognitive Services", "metersubcategory": "Azure OpenAI", "chargetype": "Usage",
              "billingcurrencycode": "USD", "billingcurrency": "USD", "quantity": "1.5",
              "pricingmodel": "On Demand", "additionalinfo": "{\"DeploymentName\": \"hidden\"}"}
    for name, value in values.items():
        if name in lower:
            record[lower[name]] = value
    return record


def write_csv(path: Path, columns: Sequence[str], records: Sequence[Mapping[str, object]], *, bom: bool = False,
              compress: bool = False) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(records)
    data = (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_parquet(path: Path, columns: Sequence[str], records: Sequence[Mapping[str, object]],
                  numbers: Mapping[str, Callable[[str], object]]) -> Path:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    arrays = {}
    for name in columns:
        convert = numbers.get(name)
        values = [record[name] if record[name] != "" else None for record in records]
        arrays[name] = pa.array([convert(str(v)) if convert and v is not None else v for v in values])
    pq.write_table(pa.table(arrays), str(path))
    return path


def focus_csv_file(tmp_path: Path, charges: list[Charge]) -> Path:
    return write_csv(tmp_path / "focus.csv", FOCUS_COLUMNS, [focus_record(c) for c in charges], bom=True)


def focus_parquet_file(tmp_path: Path, charges: list[Charge]) -> Path:
    # Costs as decimals and timestamps as timestamps, as a parquet export types them.
    return write_parquet(tmp_path / "focus.parquet", FOCUS_COLUMNS, [focus_record(c) for c in charges], {
        "BilledCost": Decimal, "EffectiveCost": Decimal,
        "ChargePeriodStart": lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))})


def ea_csv_file(tmp_path: Path, charges: list[Charge]) -> Path:
    return write_csv(tmp_path / "ea-actual.csv", EA_COLUMNS, [classic_record(c, EA_COLUMNS) for c in charges],
                     bom=True)


def mca_csv_gz_file(tmp_path: Path, charges: list[Charge]) -> Path:
    return write_csv(tmp_path / "mca-actual.csv.gz", MCA_COLUMNS, [classic_record(c, MCA_COLUMNS) for c in charges],
                     compress=True)


def classic_parquet_file(tmp_path: Path, charges: list[Charge]) -> Path:
    # Doubles, as some parquet exports hold them: read through their shortest repr.
    return write_parquet(tmp_path / "mca.parquet", MCA_COLUMNS, [classic_record(c, MCA_COLUMNS) for c in charges],
                         {"costInBillingCurrency": float, "quantity": float})


WRITERS = {"focus-csv": focus_csv_file, "focus-parquet": focus_parquet_file, "ea-csv": ea_csv_file,
           "mca-csv-gz": mca_csv_gz_file, "classic-parquet": classic_parquet_file}


def line_for(report: ReconciliationReport, account: str, meter_id: str | None) -> ReconciliationLine:
    matches = [ln for ln in report.lines
               if (ln.account_id or "").lower() == account.lower() and ln.meter_id == meter_id]
    assert len(matches) == 1, (account, meter_id, report.lines)
    return matches[0]


# -- readers --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_readers_keep_azure_openai_usage_rows_of_every_export_kind(tmp_path: Path, kind: str) -> None:
    export = read_cost_export(WRITERS[kind](tmp_path, bill_with_gaps()))
    assert export.kind == ("focus" if kind.startswith("focus") else "classic")
    assert export.cost_column in ("EffectiveCost", "CostInBillingCurrency", "costInBillingCurrency")
    assert export.other_resources == 1  # the storage account
    assert len(export.rows) == 6
    first = export.rows[0]
    assert (first.resource_id, first.meter_id, first.charge_date, first.cost, first.currency) == (
        ACCOUNT, METER_INPUT, date(2026, 11, 3), Decimal("3.09"), "USD")
    assert first.meter_name == "gpt-4o-0806-Inp-glbl Tokens" and first.resource_name in (None, "aoai-east")
    assert sum((row.cost for row in export.rows), Decimal(0)) == Decimal("93.43")


def test_an_unknown_file_or_a_bad_value_fails_naming_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "other.csv", ("Foo", "Bar"), [{"Foo": "1", "Bar": "2"}])
    with pytest.raises(CostExportError, match=r"other\.csv: not a cost export this reader knows"):
        read_cost_export(path)
    records = [focus_record(c) for c in bill_with_gaps()]
    records[2]["EffectiveCost"] = "12,50"
    with pytest.raises(CostExportError, match=r"focus\.csv row 4: EffectiveCost is not a number"):
        read_cost_export(write_csv(tmp_path / "focus.csv", FOCUS_COLUMNS, records))
    no_date = [c for c in EA_COLUMNS if c != "Date"]
    with pytest.raises(CostExportError, match="classic export without column"):
        read_cost_export(write_csv(tmp_path / "ea.csv", no_date, []))


def test_non_usage_rows_are_left_out_and_counted(tmp_path: Path) -> None:
    records = [focus_record(c) for c in discounted_bill()]
    records[0]["ChargeCategory"] = "Purchase"
    export = read_cost_export(write_csv(tmp_path / "focus.csv", FOCUS_COLUMNS, records))
    assert (export.non_usage, len(export.rows)) == (1, 3)


# -- reconciliation -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_rounding_bypass_idle_capacity_and_an_account_never_in_the_logs(tmp_path: Path, kind: str) -> None:
    rows = billed_rows(read_cost_exports([WRITERS[kind](tmp_path, bill_with_gaps())]))
    report = reconcile(rows, allocated(), MONTH)

    inputs = line_for(report, ACCOUNT, METER_INPUT)
    assert (inputs.billed, inputs.allocated, inputs.difference, inputs.shown_difference) == (
        Decimal("4.09"), Decimal("4.0864175"), Decimal("0.0035825"), Decimal(0))
    assert inputs.reasons == (Reason.ROUNDING,)
    assert inputs.deployments == ("chat",)

    outputs = line_for(report, ACCOUNT, METER_OUTPUT)
    assert (outputs.billed, outputs.allocated, outputs.shown_difference) == (
        Decimal("26.00"), Decimal("20.00"), Decimal("6.00"))
    assert outputs.reasons == (Reason.BYPASSED_APIM,)

    ptu = line_for(report, ACCOUNT, METER_PTU)
    assert (ptu.billed, ptu.allocated, ptu.idle, ptu.shown_difference) == (
        Decimal("1.00"), Decimal("0.6"), Decimal("0.4"), Decimal(0))
    assert ptu.reasons == (Reason.PTU_IDLE,)

    unseen = line_for(report, OTHER_ACCOUNT, METER_INPUT)
    assert unseen.reasons == (Reason.BILLED_NOT_IN_LOGS,)
    assert unseen.allocated == 0 and unseen.shown_difference == Decimal("12.34")
    assert [a.lower() for a in report.accounts_not_in_logs] == [OTHER_ACCOUNT.lower()]

    unpriced = [ln for ln in report.lines if Reason.UNPRICED_USAGE in ln.reasons]
    assert len(unpriced) == 1 and unpriced[0].billed == 0 and unpriced[0].unpriced_lines == 1
    assert report.unpriced_lines == 1

    assert report.total_billed == Decimal("43.43")  # 93.43 less the storage row and October's
    assert report.total_allocated == Decimal("24.6864175")
    assert report.total_idle == Decimal("0.4")
    assert report.total_unallocated == report.total_billed - report.total_allocated
    assert report.systematic_ratio is None
    assert sum((ln.share_of_bill or Decimal(0) for ln in report.lines), Decimal(0)) == pytest.approx(Decimal(1))
    assert any("outside the month" in note for note in report.notes)


@pytest.mark.parametrize("kind", ["focus-csv", "ea-csv", "classic-parquet"])
def test_a_negotiated_discount_shows_as_one_ratio_on_every_token_meter(tmp_path: Path, kind: str) -> None:
    rows = billed_rows([read_cost_export(WRITERS[kind](tmp_path, discounted_bill()))])
    report = reconcile(rows, allocated(), MONTH)
    assert report.systematic_ratio == Decimal("0.850000")
    for meter in (METER_INPUT, METER_OUTPUT):
        line = line_for(report, ACCOUNT, meter)
        assert Reason.NEGOTIATED_DISCOUNT in line.reasons
        assert line.ratio == Decimal("0.850000")
        assert line.shown_difference < 0
    assert line_for(report, ACCOUNT, METER_PTU).reasons == (Reason.PTU_IDLE,)
    assert report.accounts_not_in_logs == ()


def test_one_meter_below_the_bill_alone_is_not_called_a_discount() -> None:
    rows = [BilledRow(ACCOUNT, date(2026, 11, 3), Decimal("17.00"), "USD", METER_OUTPUT)]
    report = reconcile(rows, allocated()[2:3], MONTH)
    assert report.systematic_ratio is None
    assert report.lines[0].reasons == (Reason.ALLOCATED_ABOVE_BILL,)


def test_lines_without_a_resource_id_find_their_account_through_the_catalog() -> None:
    catalog = DeploymentCatalog([Deployment("chat", ACCOUNT, "gpt-4o", "2024-08-06", "GlobalStandard", "eastus2",
                                            None, datetime(2026, 1, 1, tzinfo=UTC))])
    line = token_line("team-a", 400_000, "2.50", account=None, deployment="CHAT")
    rows = [BilledRow(ACCOUNT, date(2026, 11, 3), Decimal("1.00"), "USD", METER_INPUT)]
    matched = reconcile(rows, [line], MONTH, catalog=catalog)
    assert len(matched.lines) == 1 and matched.lines[0].shown_difference == 0
    unmatched = reconcile(rows, [line], MONTH)
    assert [ln.reasons for ln in unmatched.lines] == [(Reason.BILLED_NOT_IN_LOGS,), (Reason.NOT_ON_BILL,)]
    assert unmatched.lines[-1].account_id is None  # the unplaced line is kept on its own, last


def test_tolerance_is_configurable_and_differences_stay_exact() -> None:
    rows = [BilledRow(ACCOUNT, date(2026, 11, 3), Decimal("4.09"), "USD", METER_INPUT)]
    report = reconcile(rows, allocated()[:2], MONTH, tolerance=Decimal("0.001"))
    assert report.lines[0].shown_difference == Decimal("0.0035825")
    assert report.lines[0].reasons == (Reason.BYPASSED_APIM,)
    with pytest.raises(ValueError, match="tolerance"):
        reconcile(rows, [], MONTH, tolerance=Decimal("-1"))


def test_a_currency_mismatch_is_said() -> None:
    rows = [BilledRow(ACCOUNT, date(2026, 11, 3), Decimal("3.70"), "EUR", METER_INPUT)]
    report = reconcile(rows, allocated()[:2], MONTH)
    assert Reason.CURRENCY_DIFFERS in report.lines[0].reasons
    assert report.currency == "EUR" and any("more than one currency" in n for n in report.notes)


def test_account_ids() -> None:
    assert account_of(ACCOUNT + "/deployments/chat") == (ACCOUNT, "aoai-east")
    assert account_of(ACCOUNT.lower()) == (ACCOUNT.lower(), "aoai-east")
    assert account_of(STORAGE) is None and account_of(None) is None


# -- presenters -----------------------------------------------------------------------------------------------
def test_presenters(tmp_path: Path) -> None:
    rows = billed_rows([read_cost_export(focus_csv_file(tmp_path, bill_with_gaps()))])
    report = reconcile(rows, allocated(), MONTH)

    text = reconciliation_text(report)
    assert "reconciliation 2026-11 (USD" in text
    assert "billed but never seen in the gateway logs: " + OTHER_ACCOUNT in text
    assert "bypassed-apim: billed above allocated" in text
    assert "unallocated (billed, carried by no team): 18.74 USD" in text  # 43.43 - 24.6864175, for people

    body = reconciliation_json(report)
    assert body["month"] == "2026-11"
    assert body["totals"] == {"billed": "43.43", "allocated": "24.6864175", "idle": "0.40",
                              "unallocated": "18.7435825", "difference": "18.3435825", "unpricedLines": 1}
    json.dumps(body)  # JSON-ready
    lines = body["lines"]
    assert isinstance(lines, list) and lines[0]["difference"] == "0.00" and lines[0]["exactDifference"] == "0.0035825"

    table = reconciliation_csv(report)
    parsed = list(csv.DictReader(io.StringIO(table, newline="")))
    assert tuple(parsed[0]) == RECONCILIATION_COLUMNS
    assert len(parsed) == len(report.lines)
    output = next(r for r in parsed if r["meterId"] == METER_OUTPUT)
    assert (output["billed"], output["difference"], output["reasons"]) == ("26.00", "6.00", "bypassed-apim")
    negative = reconciliation_csv(reconcile([BilledRow(ACCOUNT, date(2026, 11, 3), Decimal("17"), "USD",
                                                       METER_OUTPUT, meter_name="=HYPERLINK(\"x\")")],
                                            allocated()[2:3], MONTH))
    row = next(csv.DictReader(io.StringIO(negative, newline="")))
    assert row["difference"] == "-3.00"  # a number, not neutralised
    assert row["meterName"] == "'=HYPERLINK(\"x\")"
