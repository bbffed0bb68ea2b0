"""A cost line: the unit every cost output is built from (chargeback, FOCUS export, reconciliation).

One line is what one APIM subscription (or the ``unallocated-capacity`` bucket of a provisioned
deployment) owes for one meter kind of one deployment over one charge period (a day, or an hour
for PTU allocation).  It carries everything a finance tool needs to check it: the quantity in the
meter's pricing unit, the list unit price and cost from Azure's retail meter, the contracted
(negotiated) price and cost when an override applies, how it was priced (``cost_basis``) and
allocated, and the price list's as-of date.  An unknown price is ``None`` — never zero — and the
line says why in ``unpriced_reason``.

Invariants (tested): ``list_unit_price × pricing_quantity == list_cost`` and the same for the
contracted pair, exactly (``Decimal``); ``billed_cost == contracted_cost`` (what the chargeback
charges); charge periods are UTC with an exclusive end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

UNALLOCATED_CAPACITY = "unallocated-capacity"  # the idle part of a provisioned deployment's hours
TOKENS_PER_PRICING_UNIT = 1_000_000  # token meters are priced per 1M tokens
PRICING_UNIT_TOKENS = "1M Tokens"
PRICING_UNIT_PTU_HOUR = "PTU Hours"


class CostBasis(StrEnum):
    PAYG = "payg"  # pay-as-you-go token meters (Standard / Priority)
    BATCH = "batch"  # batch token meters
    PTU_ALLOCATED = "ptu-allocated"  # a share of a provisioned deployment's hourly cost
    OVERRIDE = "override"  # a negotiated (EA/MCA) rate replaced the retail one


class AllocationMethod(StrEnum):
    METERED = "metered"  # tokens × meter price
    CAPACITY_WEIGHTED = "capacity-weighted"  # PTU hour split by capacity-weighted tokens
    TOTAL_TOKENS = "total-tokens"  # PTU hour split by plain tokens (model's capacity ratio unknown)
    UNALLOCATED = "unallocated"  # idle PTU capacity, nobody's
    IDLE_SPREAD = "idle-spread"  # idle PTU capacity spread over the month's users pro rata


@dataclass(frozen=True)
class CostLine:
    subscription_id: str  # APIM subscription id, or UNALLOCATED_CAPACITY
    product_id: str
    deployment: str
    model: str
    model_version: str | None
    deployment_type: str | None  # global | datazone | regional; None when the deployment is uncatalogued
    mode: str | None  # standard | batch | priority | provisioned
    region: str | None  # Azure region (armRegionName)
    token_kind: str  # meters.TokenKind value (input, cached_input, output, ..., ptu_hour)
    charge_start: datetime  # UTC, inclusive
    charge_end: datetime  # UTC, exclusive
    consumed_quantity: Decimal  # tokens, or PTU-hours
    consumed_unit: str  # "Tokens" or "PTU Hours"
    pricing_quantity: Decimal  # in the pricing unit: tokens / 1M, or PTU-hours
    pricing_unit: str  # PRICING_UNIT_TOKENS or PRICING_UNIT_PTU_HOUR
    list_unit_price: Decimal | None  # retail price per pricing unit; None = unpriced
    list_cost: Decimal | None
    contracted_unit_price: Decimal | None  # after a negotiated override; = list without one
    contracted_cost: Decimal | None
    cost_basis: CostBasis
    allocation_method: AllocationMethod
    price_as_of: date | None  # the price list's as-of date (retail feed sync, or the shipped file)
    currency: str
    catalogued: bool  # False: the deployment is not in the catalog; priced by model name (fallback)
    meter_id: str | None = None  # Azure's meterId, when the price came from a retail meter
    resource_id: str | None = None  # the Azure OpenAI deployment's ARM id, when known
    unpriced_reason: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # The reservation (its Azure id) covering this provisioned hour, fully or in part; None for
    # on-demand lines. A FOCUS row with it is PricingCategory=Committed (shared.core.focus).
    commitment_discount_id: str | None = None
    # The APIM service (gateway) of the usage the line charges: two gateways' subscriptions of the same
    # name are different teams' lines.  "" when the usage names none (one gateway, or services merged).
    apim_service: str = ""
    # The service tier the usage was served at ("priority", or "" for the default tier): a priority
    # line is priced by a Priority meter (``mode`` "priority"), never by the standard one.
    service_tier: str = ""

    @property
    def billed_cost(self) -> Decimal | None:
        return self.contracted_cost
