"""Azure Cost Management exports read as bill rows (:class:`shared.core.reconcile.BilledRow`).

Two export kinds, CSV (optionally gzip-compressed) or parquet, told apart by their columns
(names compared case-insensitively: EA files spell them ``CostInBillingCurrency``, MCA files
``costInBillingCurrency``):

- **FOCUS** cost and usage (``FocusCost`` 1.0 and later), recognised by ``BilledCost``. Columns
  read, as Microsoft's FocusCost metadata documents them (microsoft/finops-toolkit,
  ``src/open-data/dataset-metadata/FocusCost_1.0.json`` and ``FocusCost_1.2-preview.json``):
  ``ResourceId``, ``ResourceName``, ``ChargePeriodStart``, ``ChargeCategory``, ``BillingCurrency``,
  ``EffectiveCost`` (else ``BilledCost``), ``ConsumedQuantity`` / ``ConsumedUnit``,
  ``PricingCategory``, ``x_SkuMeterId``, the meter name from ``SkuMeter`` (1.1+, "same as
  MeterName") or ``x_SkuMeterName`` (1.0), ``x_SkuMeterCategory``, ``x_SkuMeterSubcategory``.
  ``EffectiveCost`` is preferred because committed (reservation) usage has ``BilledCost`` 0 in
  FOCUS while this project's PTU lines carry the reservation's amortised share; for on-demand
  charges the two are equal.
- **Classic** actual / amortized cost details (EA 2021-10-01, MCA 2021-10-01 / 2023-12-01-preview
  schemas in the Azure docs' "cost and usage details file schema" pages), recognised by
  ``CostInBillingCurrency``: ``ResourceId``, ``ResourceName``, ``Date``, ``MeterId``,
  ``MeterName``, ``MeterCategory``, ``MeterSubCategory``, ``Quantity``, ``UnitOfMeasure``,
  ``BillingCurrency`` (MCA) or ``BillingCurrencyCode`` (EA), ``ChargeType``, ``PricingModel``
  (``Reservation`` -> committed). ``Date`` is ``MM/DD/YYYY`` in Cost Management's CSV files; ISO
  dates are accepted too.

Only **usage** rows of Azure OpenAI **accounts** (``Microsoft.CognitiveServices/accounts``, the
resource Azure bills Azure OpenAI on; the meter names the model) are kept; the rest is counted, so
a reader can tell "nothing of ours in this file" from "empty file". A row that cannot be read
(a cost that is not a number, a date that is not a date) fails the whole file, naming the row.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from shared.adapters.focus_files import pyarrow_module
from shared.core.reconcile import BilledRow, is_openai_resource
from shared.errors import ChargebackError

ExportKind = Literal["focus", "classic"]


class CostExportError(ChargebackError):
    """A cost export cannot be read (unknown columns, a bad value); the message names the file and row."""


@dataclass(frozen=True)
class CostExport:
    source: str
    kind: ExportKind
    cost_column: str  # the column ``BilledRow.cost`` came from
    rows: tuple[BilledRow, ...]  # usage rows of Azure OpenAI accounts
    other_resources: int  # rows of other resources (or without one), left out
    non_usage: int  # Azure OpenAI rows that are not usage (purchases, refunds, credits), left out


# Column names per export kind, lower case -> what BilledRow calls them.
_FOCUS = {"resource_id": ("resourceid",), "resource_name": ("resourcename",), "date": ("chargeperiodstart",),
          "currency": ("billingcurrency",), "meter_id": ("x_skumeterid",), "meter_name": ("skumeter", "x_skumetername"),
          "meter_category": ("x_skumetercategory",), "meter_subcategory": ("x_skumetersubcategory",),
          "quantity": ("consumedquantity",), "unit": ("consumedunit",), "charge": ("chargecategory",),
          "pricing": ("pricingcategory",)}
_CLASSIC = {"resource_id": ("resourceid", "instanceid"), "resource_name": ("resourcename",), "date": ("date",),
            "currency": ("billingcurrency", "billingcurrencycode"), "meter_id": ("meterid",),
            "meter_name": ("metername",), "meter_category": ("metercategory",),
            "meter_subcategory": ("metersubcategory",), "quantity": ("quantity",), "unit": ("unitofmeasure",),
            "charge": ("chargetype",), "pricing": ("pricingmodel",)}
_REQUIRED = ("resource_id", "date", "currency")


def _open_text(path: Path) -> io.TextIOBase:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    # Cost Management writes UTF-8 with a byte order mark; utf-8-sig reads both.
    return io.StringIO(raw.decode("utf-8-sig"), newline="")


def _records(path: Path) -> tuple[list[str], Iterable[Mapping[str, object]]]:
    if path.suffix.lower() == ".parquet":
        pyarrow_module()  # a clear error when the local extras are not installed
        import pyarrow.parquet as pq

        table = pq.read_table(str(path))
        records: list[Mapping[str, object]] = table.to_pylist()
        return list(table.column_names), records
    reader = csv.DictReader(_open_text(path))
    return list(reader.fieldnames or []), reader


def _kind(columns: Sequence[str], source: str) -> tuple[ExportKind, str, dict[str, str]]:
    lower = {name.strip().lower(): name for name in columns}
    if "billedcost" in lower:
        kind: ExportKind = "focus"
        cost = lower.get("effectivecost") or lower["billedcost"]
        names = _FOCUS
    elif "costinbillingcurrency" in lower:
        kind, cost, names = "classic", lower["costinbillingcurrency"], _CLASSIC
    else:
        raise CostExportError(f"{source}: not a cost export this reader knows: neither a FOCUS export (BilledCost) "
                              f"nor a classic cost details file (CostInBillingCurrency); columns: "
                              f"{', '.join(columns[:12])}{' ...' if len(columns) > 12 else ''}")
    found = {field: next((lower[c] for c in candidates if c in lower), "") for field, candidates in names.items()}
    missing = [names[f][0] for f in _REQUIRED if not found[f]]
    if missing:
        raise CostExportError(f"{source}: {kind} export without column(s) {', '.join(missing)}")
    return kind, cost, found


def _text(record: Mapping[str, object], column: str) -> str | None:
    if not column:
        return None
    value = record.get(column)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _decimal(value: object, where: str, column: str) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise CostExportError(f"{where}: {column} is not a number: {value!r}")
    # Parquet exports may hold doubles: their shortest repr is the decimal the exporter wrote.
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CostExportError(f"{where}: {column} is not a number: {value!r}") from None
    if not number.is_finite():
        raise CostExportError(f"{where}: {column} is not a finite number: {value!r}")
    return number


def _day(value: object, where: str, column: str) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    try:
        if "/" in text:  # Cost Management CSV: MM/DD/YYYY
            return datetime.strptime(text.split(" ")[0], "%m/%d/%Y").date()
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CostExportError(f"{where}: {column} is not a date: {value!r}") from None
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def _pricing(kind: ExportKind, text: str | None) -> str | None:
    if text is None or kind == "focus":
        return text
    return {"reservation": "Committed", "on demand": "Standard", "savingsplan": "Committed",
            "spot": "Dynamic"}.get(text.lower(), text)


def read_cost_export(path: Path) -> CostExport:
    """Read one export file (``.csv``, ``.csv.gz`` or ``.parquet``)."""
    source = path.name
    columns, records = _records(path)
    kind, cost_column, found = _kind(columns, source)
    rows: list[BilledRow] = []
    other, non_usage = 0, 0
    for number, record in enumerate(records, start=2 if path.suffix.lower() != ".parquet" else 1):
        where = f"{source} row {number}"
        resource_id = _text(record, found["resource_id"])
        if not is_openai_resource(resource_id):
            other += 1
            continue
        assert resource_id is not None
        charge = _text(record, found["charge"])
        if charge is not None and charge.lower() != "usage":
            non_usage += 1
            continue
        cost = _decimal(record.get(cost_column), where, cost_column) or Decimal(0)
        rows.append(BilledRow(
            resource_id=resource_id, charge_date=_day(record.get(found["date"]), where, found["date"]), cost=cost,
            currency=_text(record, found["currency"]) or "", meter_id=_text(record, found["meter_id"]),
            meter_name=_text(record, found["meter_name"]), resource_name=_text(record, found["resource_name"]),
            meter_category=_text(record, found["meter_category"]),
            meter_subcategory=_text(record, found["meter_subcategory"]),
            quantity=_decimal(record.get(found["quantity"]), where, found["quantity"]) if found["quantity"] else None,
            unit=_text(record, found["unit"]), pricing_category=_pricing(kind, _text(record, found["pricing"])),
            source=where))
    return CostExport(source, kind, cost_column, tuple(rows), other, non_usage)


def read_cost_exports(paths: Sequence[Path]) -> list[CostExport]:
    """Several files (a month can come as several partitions); each read on its own."""
    return [read_cost_export(path) for path in paths]


def billed_rows(exports: Iterable[CostExport]) -> list[BilledRow]:
    return [row for export in exports for row in export.rows]
