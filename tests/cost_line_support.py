"""Cost lines for the FOCUS export and reconciliation tests, built by hand (no costing code involved)."""

from __future__ import annotations

import decimal
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from shared.core.cost_lines import (
    PRICING_UNIT_PTU_HOUR,
    PRICING_UNIT_TOKENS,
    UNALLOCATED_CAPACITY,
    AllocationMethod,
    CostBasis,
    CostLine,
)

MONTH = datetime(2026, 11, 1, tzinfo=UTC)
NEXT_MONTH = datetime(2026, 12, 1, tzinfo=UTC)
ACCOUNT = "/subscriptions/0000-1111/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/aoai-east"
OTHER_ACCOUNT = "/subscriptions/0000-1111/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/aoai-west"
RESERVATION = ("/providers/Microsoft.Capacity/reservationOrders/11111111-2222-3333-4444-555555555555"
               "/reservations/66666666-7777-8888-9999-000000000000")
METER_INPUT = "a1b2c3d4-0000-0000-0000-000000000001"
METER_OUTPUT = "a1b2c3d4-0000-0000-0000-000000000002"
METER_PTU = "a1b2c3d4-0000-0000-0000-0000000000ff"
_EXACT = decimal.Context(prec=80, traps=[decimal.Inexact])


def deployment_id(name: str, account: str = ACCOUNT) -> str:
    return f"{account}/deployments/{name}"


def token_line(subscription: str, tokens: int, list_price: str | None, *, contracted_price: str | None = None,
               kind: str = "input", deployment: str = "chat", day: int = 3, meter_id: str | None = METER_INPUT,
               account: str | None = ACCOUNT, product: str = "team-product", region: str | None = "eastus2",
               unpriced_reason: str | None = None, tags: dict[str, str] | None = None) -> CostLine:
    """A day of a pay-as-you-go token meter; prices per 1M tokens (``None``: unpriced)."""
    quantity = Decimal(tokens) / Decimal(1_000_000)
    start = MONTH + timedelta(days=day - 1)
    with decimal.localcontext(_EXACT):
        list_unit = Decimal(list_price) if list_price is not None else None
        contracted_unit = Decimal(contracted_price) if contracted_price is not None else list_unit
        list_cost = list_unit * quantity if list_unit is not None else None
        contracted_cost = contracted_unit * quantity if contracted_unit is not None else None
    return CostLine(
        subscription_id=subscription, product_id=product, deployment=deployment, model="gpt-4o",
        model_version="2024-08-06", deployment_type="global", mode="standard", region=region, token_kind=kind,
        charge_start=start, charge_end=start + timedelta(days=1), consumed_quantity=Decimal(tokens),
        consumed_unit="Tokens", pricing_quantity=quantity, pricing_unit=PRICING_UNIT_TOKENS,
        list_unit_price=list_unit, list_cost=list_cost, contracted_unit_price=contracted_unit,
        contracted_cost=contracted_cost,
        cost_basis=CostBasis.OVERRIDE if contracted_price is not None else CostBasis.PAYG,
        allocation_method=AllocationMethod.METERED, price_as_of=date(2026, 10, 30), currency="USD",
        catalogued=account is not None, meter_id=meter_id if list_unit is not None else None,
        resource_id=deployment_id(deployment, account) if account else None,
        unpriced_reason=unpriced_reason if list_unit is None else None, tags=dict(tags or {}))


def ptu_line(subscription: str, ptu_hours: str, rate: str, *, hour: int = 5, deployment: str = "ptu-east",
             reservation: str | None = None, account: str = ACCOUNT) -> CostLine:
    """A share of one provisioned hour (``ptu_hours`` PTU-hours at ``rate`` per PTU-hour)."""
    start = MONTH + timedelta(hours=hour)
    quantity, unit = Decimal(ptu_hours), Decimal(rate)
    with decimal.localcontext(_EXACT):
        cost = quantity * unit
    idle = subscription == UNALLOCATED_CAPACITY
    return CostLine(
        subscription_id=subscription, product_id="" if idle else "ptu-product", deployment=deployment,
        model="gpt-4o", model_version="2024-08-06", deployment_type="global", mode="provisioned",
        region="eastus2", token_kind="ptu_hour", charge_start=start, charge_end=start + timedelta(hours=1),
        consumed_quantity=quantity, consumed_unit="PTU Hours", pricing_quantity=quantity,
        pricing_unit=PRICING_UNIT_PTU_HOUR, list_unit_price=unit, list_cost=cost, contracted_unit_price=unit,
        contracted_cost=cost, cost_basis=CostBasis.PTU_ALLOCATED,
        allocation_method=AllocationMethod.UNALLOCATED if idle else AllocationMethod.CAPACITY_WEIGHTED,
        price_as_of=date(2026, 10, 30), currency="USD", catalogued=True, meter_id=METER_PTU,
        resource_id=deployment_id(deployment, account), commitment_discount_id=reservation)
