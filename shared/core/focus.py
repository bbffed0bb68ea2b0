"""Cost lines as FOCUS 1.2 rows: the FinOps Open Cost and Usage Specification, one row per cost line.

A FOCUS row carries every *mandatory* column of the specification, the *conditional* (and two
*recommended*) columns that apply to metered Azure OpenAI usage, and this project's own columns,
prefixed ``x_`` as FOCUS requires for custom columns. :data:`COLUMNS` is the one list, in order,
with each column's FOCUS data type; writers (CSV, parquet) take their schema from it.

**Money is exact.** Decimal columns hold :class:`~decimal.Decimal` values; ``ListUnitPrice ×
PricingQuantity = ListCost`` and ``ContractedUnitPrice × PricingQuantity = ContractedCost`` hold
exactly, and a cost line breaking them is refused (:class:`FocusRowError`), never exported.

**Unpriced lines.** A line whose price is unknown has no cost, but FOCUS cost columns may not be
null. Such a row carries cost ``0`` in all four cost columns, null unit prices, ``x_Unpriced`` =
true, and its reason at the start of ``ChargeDescription`` (``UNPRICED (reason): ...``). The sum of
``BilledCost`` is therefore the sum over *priced* lines — the same total the chargeback charges,
which leaves unpriced usage out as well — and a reader filtering on ``x_Unpriced`` sees what is missing.

**Cost semantics.** This is a chargeback dataset: ``BilledCost`` is what a team is charged
(``CostLine.billed_cost``, the contracted cost), ``EffectiveCost`` is the same amount (a PTU
reservation's price is already spread over its hours by the PTU allocation, i.e. amortised).
It re-allocates money that is also on Azure's own invoice: load it in its own scope, never add it
to Microsoft's cost export.

**Committed usage.** A provisioned (PTU) line whose hour a reservation covers, fully or in part,
has ``CostLine.commitment_discount_id`` set: its row says ``PricingCategory = Committed`` with the
``CommitmentDiscount*`` columns filled (``Usage`` category, type ``Reservation``, status ``Used``).
Every other line is ``Standard`` with those columns null. The idle part of a reserved hour stays in
the ``unallocated-capacity`` line; that line cannot tell reserved-but-undeployed PTUs from
deployed-but-idle ones, so it is reported as ``Used`` too.

**Priority processing.** Tokens the responses reported as served at the priority tier are lines of
their own (``CostLine.service_tier``), priced by the Priority retail meter: ``SkuPriceId`` is that
meter's id, ``SkuMeter`` and ``x_BillingMode`` say ``priority``, the unit prices are the Priority
ones; without a Priority meter in force the row is unpriced (``x_Unpriced``), never at the standard price.

**Dates** are ISO 8601 UTC text ``YYYY-MM-DDTHH:mm:ssZ``, period ends exclusive; a charge period
outside the billing period is refused.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from shared.core.cost_lines import UNALLOCATED_CAPACITY, CostBasis, CostLine

FOCUS_VERSION = "1.2"
PROVIDER = "Microsoft"
SERVICE_NAME = "Azure OpenAI"
SERVICE_CATEGORY = "AI and Machine Learning"
SERVICE_SUBCATEGORY = "Generative AI"
RESOURCE_TYPE = "Azure OpenAI deployment"
CHARGE_CATEGORY = "Usage"
CHARGE_FREQUENCY = "Usage-Based"
PRICING_STANDARD = "Standard"
PRICING_COMMITTED = "Committed"
UNPRICED_PREFIX = "UNPRICED"

_EXACT = decimal.Context(prec=80, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])


@dataclass(frozen=True)
class FocusColumn:
    name: str
    data_type: str  # FOCUS data type: Decimal, String, Date/Time, JSON; Boolean for our own flags
    nullable: bool
    level: str  # Mandatory, Conditional, Recommended (FOCUS 1.2), or Custom (x_ columns)


def _columns(level: str, *specs: tuple[str, str, bool]) -> tuple[FocusColumn, ...]:
    return tuple(FocusColumn(name, data_type, nullable, level) for name, data_type, nullable in specs)


MANDATORY = _columns(
    "Mandatory",
    ("BilledCost", "Decimal", False), ("BillingAccountId", "String", False),
    ("BillingAccountName", "String", True), ("BillingCurrency", "String", False),
    ("BillingPeriodEnd", "Date/Time", False), ("BillingPeriodStart", "Date/Time", False),
    ("ChargeCategory", "String", False), ("ChargeClass", "String", True), ("ChargeDescription", "String", True),
    ("ChargePeriodEnd", "Date/Time", False), ("ChargePeriodStart", "Date/Time", False),
    ("ContractedCost", "Decimal", False), ("EffectiveCost", "Decimal", False),
    ("InvoiceIssuerName", "String", False), ("ListCost", "Decimal", False),
    ("PricingQuantity", "Decimal", True), ("PricingUnit", "String", True), ("ProviderName", "String", False),
    ("PublisherName", "String", False), ("ServiceCategory", "String", False), ("ServiceName", "String", False),
)
CONDITIONAL = _columns(
    "Conditional",
    ("CommitmentDiscountCategory", "String", True), ("CommitmentDiscountId", "String", True),
    ("CommitmentDiscountStatus", "String", True), ("CommitmentDiscountType", "String", True),
    ("ConsumedQuantity", "Decimal", True), ("ConsumedUnit", "String", True),
    ("ContractedUnitPrice", "Decimal", True), ("ListUnitPrice", "Decimal", True),
    ("PricingCategory", "String", True), ("RegionId", "String", True), ("RegionName", "String", True),
    ("ResourceId", "String", True), ("ResourceName", "String", True), ("ResourceType", "String", True),
    ("SkuMeter", "String", True), ("SkuPriceId", "String", True), ("Tags", "JSON", True),
)
RECOMMENDED = _columns(
    "Recommended",
    ("ChargeFrequency", "String", False), ("ServiceSubcategory", "String", False),
)
CUSTOM = _columns(
    "Custom",
    ("x_ApimSubscription", "String", False), ("x_ApimSubscriptionName", "String", True),
    ("x_ApimService", "String", True), ("x_ApimProduct", "String", True), ("x_CostCenter", "String", True),
    ("x_CostCenterOwner", "String", True), ("x_BusinessUnit", "String", True),
    ("x_Deployment", "String", False), ("x_Model", "String", False), ("x_ModelVersion", "String", True),
    ("x_DeploymentType", "String", True), ("x_BillingMode", "String", True), ("x_TokenKind", "String", False),
    ("x_AllocationMethod", "String", False), ("x_CostBasis", "String", False), ("x_PriceAsOf", "String", True),
    ("x_Catalogued", "Boolean", False), ("x_Unpriced", "Boolean", False),
)
COLUMNS: tuple[FocusColumn, ...] = MANDATORY + CONDITIONAL + RECOMMENDED + CUSTOM
COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
DECIMAL_COLUMNS = frozenset(c.name for c in COLUMNS if c.data_type == "Decimal")
DATETIME_COLUMNS = frozenset(c.name for c in COLUMNS if c.data_type == "Date/Time")

# armRegionName -> display name, as Azure spells it (FOCUS RegionName); a region not listed keeps its id.
REGION_NAMES: Mapping[str, str] = {
    "australiaeast": "Australia East", "brazilsouth": "Brazil South", "canadacentral": "Canada Central",
    "canadaeast": "Canada East", "centralus": "Central US", "eastus": "East US", "eastus2": "East US 2",
    "francecentral": "France Central", "germanywestcentral": "Germany West Central",
    "italynorth": "Italy North", "japaneast": "Japan East", "koreacentral": "Korea Central",
    "northcentralus": "North Central US", "northeurope": "North Europe", "norwayeast": "Norway East",
    "polandcentral": "Poland Central", "southafricanorth": "South Africa North",
    "southcentralus": "South Central US", "southindia": "South India", "southeastasia": "Southeast Asia",
    "spaincentral": "Spain Central", "swedencentral": "Sweden Central", "switzerlandnorth": "Switzerland North",
    "switzerlandwest": "Switzerland West", "uaenorth": "UAE North", "uksouth": "UK South",
    "westeurope": "West Europe", "westus": "West US", "westus3": "West US 3",
}


class FocusRowError(ValueError):
    """A cost line cannot become a valid FOCUS row (a broken price invariant, a period outside the
    billing period); the message names the line."""


# -- cost centers -------------------------------------------------------------------------------------
class CostCenterLike(Protocol):
    """What the export reads of a subscription's cost center (any object with these attributes)."""

    @property
    def cost_center(self) -> str | None: ...

    @property
    def owner(self) -> str | None: ...

    @property
    def display_name(self) -> str | None: ...

    @property
    def tags(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class CostCenterInfo:
    cost_center: str | None = None
    owner: str | None = None
    display_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    business_unit: str | None = None


def _text_or_none(value: object) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value)


def cost_center_info(value: CostCenterLike | Mapping[str, Any] | None) -> CostCenterInfo:
    """A cost center from an object with the attributes of :class:`CostCenterLike` (such as
    ``cost_centers.SubscriptionInfo``; ``business_unit`` is read when present), or a mapping with the
    same keys (``costCenter`` / ``displayName`` / ``businessUnit`` spellings accepted too).
    Empty text is no value (``x_CostCenter`` null, not ``""``)."""
    if value is None:
        return CostCenterInfo()
    if isinstance(value, Mapping):
        def get(*names: str) -> str | None:
            return next((_text_or_none(value[n]) for n in names if _text_or_none(value.get(n))), None)
        tags = value.get("tags") or {}
        return CostCenterInfo(get("cost_center", "costCenter"), get("owner"), get("display_name", "displayName"),
                              {str(k): str(v) for k, v in dict(tags).items()}, get("business_unit", "businessUnit"))
    tags = {str(k): str(v) for k, v in dict(value.tags or {}).items()}
    return CostCenterInfo(_text_or_none(value.cost_center), _text_or_none(value.owner),
                          _text_or_none(value.display_name), tags, _text_or_none(getattr(value, "business_unit", None)))


# -- rows -------------------------------------------------------------------------------------------
def focus_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:mm:ssZ``; refuses a moment that is not UTC or has a fraction of a second."""
    offset = moment.utcoffset()
    if offset is None or offset != timedelta(0):
        raise FocusRowError(f"FOCUS moments are UTC, got {moment!r}")
    if moment.microsecond:
        raise FocusRowError(f"FOCUS moments have whole seconds, got {moment!r}")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _product(unit_price: Decimal, quantity: Decimal) -> Decimal:
    with decimal.localcontext(_EXACT):
        return unit_price * quantity


def _check_price(line: CostLine, what: str, unit_price: Decimal | None, cost: Decimal | None) -> None:
    if unit_price is None or cost is None:
        return
    try:
        product = _product(unit_price, line.pricing_quantity)
    except decimal.DecimalException:
        product = None
    if product != cost:
        raise FocusRowError(f"{_describe(line)}: {what} unit price {unit_price} × pricing quantity "
                            f"{line.pricing_quantity} = {product}, not the line's {what} cost {cost}")


def _describe(line: CostLine) -> str:
    return (f"cost line ({line.subscription_id}, deployment {line.deployment!r}, {line.token_kind}, "
            f"{line.charge_start.isoformat()})")


def _words(value: str | None) -> str:
    return (value or "").replace("_", " ").replace("-", " ").strip()


def sku_meter(line: CostLine) -> str:
    """What is metered, in words: ``gpt-4o 2024-08-06 global standard input tokens`` / ``provisioned PTU hours``."""
    if line.pricing_unit.lower().startswith("ptu"):
        parts = [line.deployment_type or "", "provisioned", "PTU hours"]
    else:
        parts = [line.model, line.model_version or "", line.deployment_type or "", line.mode or "",
                 f"{_words(line.token_kind)} tokens"]
    return " ".join(p for p in parts if p)


def charge_description(line: CostLine) -> str:
    if line.subscription_id == UNALLOCATED_CAPACITY:
        what = f"Idle provisioned capacity of deployment {line.deployment!r} ({line.model})"
    else:
        what = f"Azure OpenAI {sku_meter(line)} on deployment {line.deployment!r}"
    quantity = f"{_plain(line.pricing_quantity)} {line.pricing_unit}"
    if line.billed_cost is None:
        reason = line.unpriced_reason or "no price for this meter"
        return f"{UNPRICED_PREFIX} ({reason}): {what}, {quantity}; cost shown as 0"
    price = line.contracted_unit_price if line.contracted_unit_price is not None else line.list_unit_price
    at = f" at {_plain(price)} {line.currency} per {line.pricing_unit}" if price is not None else ""
    return f"{what}, {quantity}{at}"


def _plain(amount: Decimal) -> str:
    return format(amount, "f")


def _tags(line: CostLine, center: CostCenterInfo) -> str | None:
    merged = {**center.tags, **line.tags}  # the line's own tags are the more specific ones
    return json.dumps(dict(sorted(merged.items())), ensure_ascii=False, separators=(",", ":")) if merged else None


def focus_row(line: CostLine, billing_period_start: datetime, billing_period_end: datetime,
              billing_account_id: str, billing_account_name: str | None, center: CostCenterInfo) -> dict[str, object]:
    """One cost line as a FOCUS row (keys in :data:`COLUMN_NAMES` order)."""
    if not (billing_period_start <= line.charge_start < line.charge_end <= billing_period_end):
        raise FocusRowError(f"{_describe(line)}: charge period {line.charge_start} .. {line.charge_end} is not "
                            f"inside the billing period {billing_period_start} .. {billing_period_end}")
    _check_price(line, "list", line.list_unit_price, line.list_cost)
    _check_price(line, "contracted", line.contracted_unit_price, line.contracted_cost)
    billed = line.billed_cost
    committed = line.cost_basis is CostBasis.PTU_ALLOCATED and line.commitment_discount_id is not None
    has_resource = bool(line.resource_id)
    region = line.region or None
    row: dict[str, object] = {
        "BilledCost": billed if billed is not None else Decimal(0),
        "BillingAccountId": billing_account_id,
        "BillingAccountName": billing_account_name,
        "BillingCurrency": line.currency,
        "BillingPeriodEnd": focus_time(billing_period_end),
        "BillingPeriodStart": focus_time(billing_period_start),
        "ChargeCategory": CHARGE_CATEGORY,
        "ChargeClass": None,  # null: not a correction of an earlier period
        "ChargeDescription": charge_description(line),
        "ChargePeriodEnd": focus_time(line.charge_end),
        "ChargePeriodStart": focus_time(line.charge_start),
        "ContractedCost": line.contracted_cost if line.contracted_cost is not None else Decimal(0),
        "EffectiveCost": billed if billed is not None else Decimal(0),
        "InvoiceIssuerName": PROVIDER,
        "ListCost": line.list_cost if line.list_cost is not None else Decimal(0),
        "PricingQuantity": line.pricing_quantity,
        "PricingUnit": line.pricing_unit,
        "ProviderName": PROVIDER,
        "PublisherName": PROVIDER,
        "ServiceCategory": SERVICE_CATEGORY,
        "ServiceName": SERVICE_NAME,
        "CommitmentDiscountCategory": "Usage" if committed else None,
        "CommitmentDiscountId": line.commitment_discount_id if committed else None,
        "CommitmentDiscountStatus": "Used" if committed else None,
        "CommitmentDiscountType": "Reservation" if committed else None,
        "ConsumedQuantity": line.consumed_quantity,
        "ConsumedUnit": line.consumed_unit,
        "ContractedUnitPrice": line.contracted_unit_price,
        "ListUnitPrice": line.list_unit_price,
        "PricingCategory": PRICING_COMMITTED if committed else PRICING_STANDARD,
        "RegionId": region,
        "RegionName": REGION_NAMES.get(region, region) if region else None,
        "ResourceId": line.resource_id if has_resource else None,
        # FOCUS: ResourceName and ResourceType are null when ResourceId is null.
        "ResourceName": line.deployment if has_resource else None,
        "ResourceType": RESOURCE_TYPE if has_resource else None,
        "SkuMeter": sku_meter(line),
        "SkuPriceId": line.meter_id,
        "Tags": _tags(line, center),
        "ChargeFrequency": CHARGE_FREQUENCY,
        "ServiceSubcategory": SERVICE_SUBCATEGORY,
        "x_ApimSubscription": line.subscription_id,
        "x_ApimSubscriptionName": center.display_name,
        "x_ApimService": line.apim_service or None,
        "x_ApimProduct": line.product_id or None,
        "x_CostCenter": center.cost_center,
        "x_CostCenterOwner": center.owner,
        "x_BusinessUnit": center.business_unit,
        "x_Deployment": line.deployment,
        "x_Model": line.model,
        "x_ModelVersion": line.model_version,
        "x_DeploymentType": line.deployment_type,
        "x_BillingMode": line.mode,
        "x_TokenKind": line.token_kind,
        "x_AllocationMethod": line.allocation_method.value,
        "x_CostBasis": line.cost_basis.value,
        "x_PriceAsOf": line.price_as_of.isoformat() if line.price_as_of else None,
        "x_Catalogued": line.catalogued,
        "x_Unpriced": billed is None,
    }
    return {name: row[name] for name in COLUMN_NAMES}


def focus_rows(lines: Sequence[CostLine], billing_period_start: datetime, billing_period_end: datetime,
               billing_account_id: str, billing_account_name: str | None,
               cost_centers: Mapping[str, CostCenterLike | Mapping[str, Any]]) -> list[dict[str, object]]:
    """One FOCUS 1.2 row per cost line, in the lines' order.

    ``billing_period_*`` is the period the rows belong to (a month: its first instant and the next
    month's), UTC; ``cost_centers`` maps an APIM subscription id to its cost center (owner, display
    name, tags); a subscription without one has null ``x_CostCenter`` columns. Raises
    :class:`FocusRowError` naming the first line that cannot be a valid row.
    """
    for moment in (billing_period_start, billing_period_end):
        focus_time(moment)
    if billing_period_end <= billing_period_start:
        raise FocusRowError(f"billing period end {billing_period_end} is not after its start {billing_period_start}")
    if not billing_account_id.strip():
        raise FocusRowError("BillingAccountId may not be empty")
    # APIM subscription ids are ARM names: case-insensitive.
    centers = {sub.lower(): cost_center_info(value) for sub, value in cost_centers.items()}
    empty = CostCenterInfo()
    return [focus_row(line, billing_period_start, billing_period_end, billing_account_id, billing_account_name,
                      centers.get(line.subscription_id.lower(), empty)) for line in lines]


def billed_total(rows: Sequence[Mapping[str, object]]) -> Decimal:
    """The sum of ``BilledCost`` (unpriced rows add 0): the chargeback total of the same lines."""
    total = Decimal(0)
    with decimal.localcontext(_EXACT):
        for row in rows:
            value = row["BilledCost"]
            if not isinstance(value, Decimal):
                raise FocusRowError(f"BilledCost must be a Decimal, got {value!r}")
            total += value
    return total
