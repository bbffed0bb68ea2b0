"""Provisioned (PTU) deployments as cost lines: each hour's bill shared by the teams that used it.

The hour costs and their exact split come from :func:`shared.core.ptu.allocate_month`: PTUs in
force x the retail rate per PTU-hour of the deployment type in its region (from the meter book, in
force at that hour), reservations from the PTU policy spread exactly over their term, each hour
shared by capacity-weighted tokens, the rest on an ``unallocated-capacity`` line (or, with
``idle="spread"``, the month's idle cost spread over its users).

A user is a subscription of one APIM service (two gateways' same-named subscriptions are two users,
with their own weights and shares, and their lines name their service).  A user that used the
deployment under several usage keys in one hour (two products) has its share split again by the
same weights, exactly, so every line belongs to one usage key.  An idle-spread line belongs to a user,
not a usage key: it names the subscription and the service, no product.

**Negotiated rates.**  A rate override of the PTU meter family (``ptu|<type>``, ``ptu|*``, ``*|<type>``
or ``*|*``, see :mod:`shared.core.rate_overrides`) in force on an hour's day replaces the list rate per
PTU-hour of that hour (a discount on it, or an explicit ``ptu_hour`` rate): the hour costs PTUs x the
contracted rate, is shared exactly as any hour, and its lines are ``cost_basis=override`` with the
list rate and list cost beside the contracted ones.  Reservations are not discounted (their price is
already the agreement's); an override changes only the PTUs billed hourly.

**Quantities.**  Without a reservation, shares are cut in quanta of ``rate x 0.000001`` so each
line's PTU-hours (``cost / rate``) are exact and ``list unit price x quantity = cost`` holds.  An
hour a reservation covers has no single unit price (reserved PTUs at the reservation's hourly share,
the rest at the list rate): its lines carry the cost, the PTU-hours share rounded to 0.000001 and
no unit price (FOCUS then checks nothing it cannot state exactly).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import cast

from shared.core.cost_lines import (
    PRICING_UNIT_PTU_HOUR,
    UNALLOCATED_CAPACITY,
    AllocationMethod,
    CostBasis,
    CostLine,
)
from shared.core.costing_rules import Pricing
from shared.core.deployments import Deployment, DeploymentType, name_key
from shared.core.meters import DeploymentType as MeterDeploymentType
from shared.core.meters import MeterPrice, Mode, PriceKey, TokenKind
from shared.core.months import next_month
from shared.core.ptu import (
    QUANTUM,
    AllocationLine,
    LineKind,
    PtuRates,
    Reservation,
    WeightBasis,
    allocate,
    allocate_month,
    capacity_weight,
    spread_idle,
)
from shared.core.rate_overrides import PTU_FAMILY, PTU_HOUR
from shared.core.usage import Granularity, UsageKey, UsageRow

HOUR = timedelta(hours=1)
_MICROSECOND = timedelta(microseconds=1)
_ONE = Fraction(1)
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
_METHODS = {LineKind.IDLE: AllocationMethod.UNALLOCATED, LineKind.IDLE_SPREAD: AllocationMethod.IDLE_SPREAD}

KeyedLine = tuple[UsageKey | None, CostLine]  # the usage key a line belongs to (None: unallocated capacity)


@dataclass(frozen=True)
class _Rate:
    """One deployment type's rate per PTU-hour in an hour: the list (retail) rate, what is billed
    (the list rate, or a negotiated one), and whether an override set it."""

    listed: Decimal | None
    billed: Decimal
    overridden: bool


_RatesKey = tuple[tuple[str, str, str, bool], ...]


@dataclass(frozen=True)
class _HourRates:
    rates: dict[DeploymentType, _Rate]

    def key(self) -> _RatesKey:
        return tuple(sorted((t.value, str(r.listed), str(r.billed), r.overridden) for t, r in self.rates.items()))


def _hour_rate(pricing: Pricing, deployment_type: DeploymentType, region: str, hour: datetime) -> _Rate | None:
    """The rate per PTU-hour of ``deployment_type`` in ``region`` at ``hour``, or ``None`` (unpriced)."""
    meter = _ptu_meter(pricing, deployment_type, region, hour)
    listed = meter.price if meter is not None else None
    override = pricing.overrides.find(PTU_FAMILY, deployment_type.value, hour.date()) if pricing.overrides else None
    contracted = override.contracted(PTU_HOUR, listed) if override is not None else None
    if contracted is not None:
        return _Rate(listed, contracted, True)
    return None if listed is None else _Rate(listed, listed, False)


def _ptu_meter(pricing: Pricing, deployment_type: DeploymentType, region: str, moment: datetime) -> MeterPrice | None:
    if pricing.meters is None:
        return None
    slot = ("ptu-meter-history", deployment_type, region)
    history = pricing.memo.get(slot)
    if history is None:
        key = PriceKey("", "", MeterDeploymentType(deployment_type.value), Mode.PROVISIONED, region.strip().lower(),
                       TokenKind.PTU_HOUR)
        history = pricing.memo[slot] = pricing.meters.history(key)
    current = None
    for row in cast(tuple[MeterPrice, ...], history):  # few rows per key: a scan is the cheapest lookup
        if row.effective_start > moment:
            break
        current = row
    if current is not None and current.effective_end is not None and current.effective_end <= moment:
        return None
    return current


def _provisioned_in(pricing: Pricing, name: str, hour: datetime) -> list[tuple[Fraction, Deployment]]:
    parts = []
    for lower, upper, version in pricing.catalog.changes_in(name, hour, hour + HOUR):
        if version.provisioned:
            whole = upper - lower == HOUR
            parts.append((_ONE if whole else Fraction((upper - lower) // _MICROSECOND, HOUR // _MICROSECOND),
                          version))
    return parts


def ptu_cost_lines(name: str, pricing: Pricing, hour_rows: Sequence[UsageRow], month: datetime) -> list[KeyedLine]:
    """Every line of deployment ``name``'s provisioned hours in ``month`` (UTC month start).

    ``hour_rows``: hour rows of the month (other deployments' rows are ignored).  Hours without a
    PTU-hour rate are unpriced lines (``unallocated-capacity``, no cost, a reason), never free.
    """
    start = Granularity.MONTH.period_start(month)
    end = next_month(start)
    history = pricing.catalog.history(name)
    hours_by_rates: dict[_RatesKey, list[datetime]] = {}
    rates_of: dict[_RatesKey, _HourRates] = {}
    unpriced: list[KeyedLine] = []
    versions: dict[datetime, list[tuple[Fraction, Deployment]]] = {}
    hour = start
    while hour < end:
        parts = _provisioned_in(pricing, name, hour)
        if parts:
            versions[hour] = parts
            found: dict[DeploymentType, _Rate] = {}
            missing = None
            for _, version in parts:
                kind = version.kind
                assert kind is not None  # provisioned implies a known SKU
                rate = _hour_rate(pricing, kind.deployment_type, version.region, hour)
                if rate is None:
                    missing = f"no PTU-hour meter for {kind.deployment_type.value} in {version.region}"
                else:
                    found[kind.deployment_type] = rate
            if missing is not None:
                unpriced.append((None, _unpriced_hour(name, pricing, hour, parts, missing)))
            else:
                rates = _HourRates(found)
                hours_by_rates.setdefault(rates.key(), []).append(hour)
                rates_of[rates.key()] = rates
        hour += HOUR
    if not versions:
        return []
    reservations = tuple(pricing.ptu.reservations.get(name_key(name), ()))
    usage = [row for row in hour_rows
             if row.granularity is Granularity.HOUR and name_key(row.key.deployment) == name_key(name)]
    single_run = len(hours_by_rates) == 1
    allocated: list[tuple[AllocationLine, Decimal, _Rate]] = []  # line, quantum, rate
    for key, hours in hours_by_rates.items():
        rates = rates_of[key]
        distinct = {rate.billed for rate in rates.rates.values()}
        quantum = QUANTUM if reservations or len(distinct) != 1 else next(iter(distinct)) * QUANTUM
        idle = pricing.ptu.idle if single_run else "unallocated"
        # allocate_month prices every provisioned hour of the month; hours of other rate runs are dropped
        # below, but must not fail: every type gets a stand-in rate that fits this run's quantum.
        stand_in = next(iter(distinct))
        hourly = {t: stand_in for t in DeploymentType} | {t: r.billed for t, r in rates.rates.items()}
        ptu_rates = PtuRates(hourly, reservations)
        wanted = set(hours)
        for line in allocate_month(name, history, usage, ptu_rates, start, idle=idle, quantum=quantum):
            if line.kind is LineKind.IDLE_SPREAD or line.hour in wanted:
                allocated.append((line, quantum, _rate_of(rates, versions.get(line.hour) or versions[max(versions)])))
    if pricing.ptu.idle == "spread" and not single_run:
        allocated = _spread(name, start, allocated)
    return [*_keyed(name, pricing, allocated, usage, versions, reservations, start, end), *unpriced]


def _rate_of(rates: _HourRates, parts: list[tuple[Fraction, Deployment]]) -> _Rate:
    kind = parts[-1][1].kind
    assert kind is not None
    return rates.rates[kind.deployment_type]


def _spread(name: str, month: datetime,
            allocated: list[tuple[AllocationLine, Decimal, _Rate]]) -> list[tuple[AllocationLine, Decimal, _Rate]]:
    """The month's idle cost spread over its users by weighted tokens, across runs of different rates."""
    spread = [line for line in spread_idle([line for line, _, _ in allocated], name, month, QUANTUM)
              if line.kind is LineKind.IDLE_SPREAD]
    if not spread:
        return allocated  # nobody used the deployment: the idle cost stays unallocated
    rate = allocated[-1][2]
    kept = [entry for entry in allocated if entry[0].kind is not LineKind.IDLE]
    return kept + [(line, QUANTUM, rate) for line in spread]


def _keyed(name: str, pricing: Pricing, allocated: list[tuple[AllocationLine, Decimal, _Rate]],
           usage: Sequence[UsageRow], versions: Mapping[datetime, list[tuple[Fraction, Deployment]]],
           reservations: tuple[Reservation, ...], start: datetime, end: datetime) -> list[KeyedLine]:
    rows_by: dict[tuple[datetime, str, str], list[UsageRow]] = {}
    for row in usage:
        rows_by.setdefault((row.period_start, row.subscription_id, row.key.apim_service), []).append(row)
    hour_totals: dict[datetime, Decimal] = {}
    for line, _, _ in allocated:
        if line.kind is not LineKind.IDLE_SPREAD:
            hour_totals[line.hour] = hour_totals.get(line.hour, Decimal(0)) + line.cost
    last_version = versions[max(versions)][-1][1]
    out: list[KeyedLine] = []
    for line, quantum, rate in allocated:
        parts = versions.get(line.hour)
        version = parts[-1][1] if parts else last_version
        spread = line.kind is LineKind.IDLE_SPREAD
        charge_start, charge_end = (start, end) if spread else (line.hour, line.hour + HOUR)
        reserved = _reserved_at(reservations, line.hour) if not spread else None
        ptu_hours = sum((part * v.ptus for part, v in parts if v.ptus), Fraction(0)) if parts else Fraction(0)
        shares: list[tuple[UsageKey | None, str, Decimal]]
        if line.kind is LineKind.USAGE:
            rows = rows_by.get((line.hour, line.subscription_id, line.apim_service), [])
            shares = _by_key(line, rows, version.model, quantum)
        else:
            shares = [(None, "", line.cost)]
        for key, product, cost in shares:
            cost_line = _cost_line(line, version, pricing, product, cost, rate, reserved, hour_totals.get(line.hour),
                                   ptu_hours, charge_start, charge_end)
            out.append((key, replace(cost_line, apim_service=key.apim_service, service_tier=key.service_tier)
                          if key is not None else replace(cost_line, apim_service=line.apim_service)))
    return out


def _by_key(line: AllocationLine, rows: list[UsageRow], model: str,
            quantum: Decimal) -> list[tuple[UsageKey | None, str, Decimal]]:
    if len(rows) == 1:
        return [(rows[0].key, rows[0].key.product_id, line.cost)]
    weights = {i: capacity_weight(model, row.counters).tokens for i, row in enumerate(rows)}
    positive = {i: w for i, w in weights.items() if w > 0}
    if not positive:
        return [(rows[0].key if rows else None, rows[0].key.product_id if rows else "", line.cost)]
    shares = allocate(line.cost, positive, quantum)
    return [(rows[i].key, rows[i].key.product_id, share) for i, share in shares.items()]


def _reserved_at(reservations: tuple[Reservation, ...], hour: datetime) -> str | None:
    for index, reservation in enumerate(reservations):
        if reservation.start <= hour < reservation.end:
            return f"PTU_RESERVATIONS#{index + 1}"
    return None


def _cost_line(line: AllocationLine, version: Deployment, pricing: Pricing, product: str, cost: Decimal,
               rate: _Rate, reserved: str | None, hour_total: Decimal | None, ptu_hours: Fraction,
               charge_start: datetime, charge_end: datetime) -> CostLine:
    unit: Decimal | None = rate.billed
    try:
        with decimal.localcontext(_EXACT):
            quantity = cost / rate.billed
    except decimal.Inexact:
        quantity, unit = Decimal(0), None
    if reserved is not None and hour_total:
        # Reserved hours have no single unit price: the PTU-hours share, rounded, and no unit price.
        share = Fraction(cost) / Fraction(hour_total) * ptu_hours
        quantity, unit = Decimal(round(share * 1_000_000)).scaleb(-6), None
    elif unit is None:
        quantity = (cost / rate.billed).quantize(QUANTUM)
    # The list cost of an overridden hour is its PTU-hours at the list rate, when both are exact; an
    # overridden hour without a unit price (reserved, or a rate without a list meter) states none.
    list_cost: Decimal | None = cost
    if rate.overridden:
        list_cost = _EXACT.multiply(quantity, rate.listed) if unit is not None and rate.listed is not None else None
    kind = version.kind
    assert kind is not None
    meter = _ptu_meter(pricing, kind.deployment_type, version.region, charge_start)
    method = _METHODS.get(line.kind) or (AllocationMethod.TOTAL_TOKENS if line.weight_basis is WeightBasis.TOTAL_TOKENS
                                         else AllocationMethod.CAPACITY_WEIGHTED)
    return CostLine(
        subscription_id=line.subscription_id, product_id=product, deployment=version.name, model=version.model,
        model_version=version.model_version or None, deployment_type=kind.deployment_type.value,
        mode=Mode.PROVISIONED.value, region=version.region, token_kind=TokenKind.PTU_HOUR.value,
        charge_start=charge_start, charge_end=charge_end, consumed_quantity=quantity, consumed_unit="PTU Hours",
        pricing_quantity=quantity, pricing_unit=PRICING_UNIT_PTU_HOUR,
        list_unit_price=(rate.listed if unit is not None else None) if rate.overridden else unit, list_cost=list_cost,
        contracted_unit_price=unit, contracted_cost=cost,
        cost_basis=CostBasis.OVERRIDE if rate.overridden else CostBasis.PTU_ALLOCATED,
        allocation_method=method, price_as_of=pricing.meters_as_of, currency=pricing.currency, catalogued=True,
        meter_id=meter.meter_id if meter else None,
        resource_id=f"{version.account}/deployments/{version.name}" if version.account.startswith("/") else None,
        commitment_discount_id=reserved)


def _unpriced_hour(name: str, pricing: Pricing, hour: datetime, parts: list[tuple[Fraction, Deployment]],
                   reason: str) -> CostLine:
    version = parts[-1][1]
    kind = version.kind
    assert kind is not None
    ptu_hours = sum((part * v.ptus for part, v in parts if v.ptus), Fraction(0))
    quantity = Decimal(round(ptu_hours * 1_000_000)).scaleb(-6)
    return CostLine(
        subscription_id=UNALLOCATED_CAPACITY, product_id="", deployment=version.name, model=version.model,
        model_version=version.model_version or None, deployment_type=kind.deployment_type.value,
        mode=Mode.PROVISIONED.value, region=version.region, token_kind=TokenKind.PTU_HOUR.value,
        charge_start=hour, charge_end=hour + HOUR, consumed_quantity=quantity, consumed_unit="PTU Hours",
        pricing_quantity=quantity, pricing_unit=PRICING_UNIT_PTU_HOUR, list_unit_price=None, list_cost=None,
        contracted_unit_price=None, contracted_cost=None, cost_basis=CostBasis.PTU_ALLOCATED,
        allocation_method=AllocationMethod.UNALLOCATED, price_as_of=pricing.meters_as_of, currency=pricing.currency,
        catalogued=True, unpriced_reason=reason)
