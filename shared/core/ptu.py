"""Provisioned throughput (PTU) cost, hour by hour, and its allocation to the teams that used it.

Azure bills a provisioned deployment per deployed PTU-hour, used or not (partial hours prorated).
This module turns a deployment's history (:mod:`shared.core.deployments`) into each hour's cost and
splits it between the APIM subscriptions that sent tokens to the deployment in that hour.

**Hour cost.** For each part of the hour a version was in force (``changes_in``): PTUs covered by a
reservation cost the reservation's share of the hour; PTUs above the reservation cost the list
rate per PTU-hour of the version's deployment type, prorated by the part of the hour::

    hour cost = reservation hour share + sum over parts (max(0, ptus - reserved) x list rate x seconds / 3600)

The prorated list part is the one rounded amount (half-even, to the quantum); everything after is
exact splitting of quantum multiples, so lines always add up to the hour costs exactly.

**Reservations** (1 month / 1 year) are bought per PTU for the whole term (260 per PTU for a month,
2652 for a year, from the Retail Prices feed). The term's total, ``ptus x price``, is spread over
the *hours of the term* (a month term bought on 15 March runs to 15 April: 744 hours; a year
8,760 or 8,784) by :func:`allocate`, so the hour shares add up to the term price exactly; the
effective hourly rate of a reserved PTU is ``price / hours in the term``. A reservation is paid
whether or not PTUs are deployed: the share of reserved PTUs not deployed in an hour is idle
capacity. Azure matches reservations by deployment type + region + scope, not by deployment;
which deployment a shared reservation covers is the caller's choice (pass each deployment its share).

**Allocation.** An hour's cost (idle reservation aside) goes to the subscriptions that used the
deployment in that hour, in proportion to their *capacity-weighted* tokens (input - cached +
ratio x output, the ratio of the model family from Microsoft's PTU sizing guidance), because PTU
capacity is consumed by exactly those tokens: an output-heavy team uses more of it. Without a known
capacity in tokens the whole hour goes to its users; when ``tokens_per_ptu_hour`` is known, only the
utilised share (capped at 1) does. The rest, and every hour without traffic, goes to the
:data:`UNALLOCATED` line, so a month's lines add up to what Azure bills. With ``idle="spread"`` the
month's unallocated cost is instead spread over the month's users by their weighted tokens.

A user is a subscription *of one APIM service* (gateway): two gateways' subscriptions of the same name
are different teams, so each has its own weight, its own share and its own lines.

A model with no known ratio is weighted by its plain total tokens, and every line of such an hour
says so (``weight_basis``): a wrong weight shows, and no team's share silently becomes zero.
"""

from __future__ import annotations

import calendar
import decimal
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import TYPE_CHECKING, Literal, TypeVar

from shared.core.deployments import Deployment, DeploymentCatalog, DeploymentType, name_key
from shared.core.usage import Counters, Granularity, UsageRow

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

K = TypeVar("K", bound="SupportsRichComparison")  # what allocate() splits among: any sortable key

UNALLOCATED = "unallocated-capacity"
QUANTUM = Decimal("0.000001")
HOUR = timedelta(hours=1)
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])

# Output-token weight in PTU capacity per model family (a family is the name and any name continuing
# it after a hyphen: versions, ``-mini``). GPT-5 minors are handled in :func:`output_ratio`.
_FAMILY_RATIOS: tuple[tuple[str, int], ...] = (("gpt-4o", 4), ("gpt-4.1", 4), ("o3", 4), ("o4-mini", 4))
_GPT5 = re.compile(r"gpt-5(?:\.(\d+))?(?:-.*)?")


def output_ratio(model: str) -> int | None:
    """How many input tokens of PTU capacity one output token uses; ``None`` for an unknown model."""
    name = model.strip().lower()
    gpt5 = _GPT5.fullmatch(name)
    if gpt5:
        return 8 if int(gpt5[1] or 0) <= 3 else 6  # gpt-5 ... 5.3: 8; 5.4 and later: 6
    for family, ratio in _FAMILY_RATIOS:
        if name == family or name.startswith(f"{family}-"):
            return ratio
    return None


class WeightBasis(StrEnum):
    CAPACITY = "capacity"  # input - cached + ratio x output
    TOTAL_TOKENS = "total-tokens"  # the model's ratio is unknown: plain total tokens, flagged
    NONE = ""  # unallocated lines


@dataclass(frozen=True)
class Weight:
    tokens: int
    basis: WeightBasis


def capacity_weight(model: str, counters: Counters) -> Weight:
    ratio = output_ratio(model)
    if ratio is None:
        return Weight(counters.total_tokens or counters.prompt_tokens + counters.completion_tokens,
                      WeightBasis.TOTAL_TOKENS)
    cached = min(max(counters.cached_tokens, 0), counters.prompt_tokens)  # a subset of prompt tokens
    return Weight(counters.prompt_tokens - cached + ratio * counters.completion_tokens, WeightBasis.CAPACITY)


# -- exact money -----------------------------------------------------------------------------------
def hour_cost(ptus: int, hourly_rate: Decimal) -> Decimal:
    """A whole hour of ``ptus`` at the list rate per PTU-hour (exact)."""
    with decimal.localcontext(_EXACT):
        return ptus * hourly_rate


def allocate(total: Decimal, weights: Mapping[K, int], quantum: Decimal = QUANTUM) -> dict[K, Decimal]:
    """Split ``total`` in proportion to ``weights`` in whole quanta, summing to ``total`` exactly.

    Largest remainder: each key gets the floor of its exact share; the quanta left over go one each
    to the largest remainders, ties broken by key order (deterministic; keys of one sortable type:
    an index, a name, or a (subscription, service) pair).
    """
    with decimal.localcontext(_EXACT):
        try:
            units_exact = total / quantum
        except decimal.Inexact:
            units_exact = Decimal("NaN")
        if quantum <= 0 or total < 0 or not units_exact.is_finite() or units_exact != units_exact.to_integral_value():
            raise ValueError(f"total {total} must be a non-negative multiple of the quantum {quantum}")
        units = int(units_exact)
        if any(w < 0 for w in weights.values()):
            raise ValueError("weights must be >= 0")
        weight_sum = sum(weights.values())
        if weight_sum == 0:
            raise ValueError(f"cannot allocate {total}: no positive weight")
        shares = {key: units * w // weight_sum for key, w in weights.items()}
        left = units - sum(shares.values())
        by_remainder = sorted(weights, key=lambda key: (-(units * weights[key] % weight_sum), key))
        for key in by_remainder[:left]:
            shares[key] += 1
        return {key: shares[key] * quantum for key in sorted(weights)}


def _to_quantum(amount: Fraction, quantum: Decimal) -> Decimal:
    """The one rounding (half-even) of a prorated amount to the quantum."""
    with decimal.localcontext(_EXACT):
        return round(amount / Fraction(quantum)) * quantum


# -- reservations ----------------------------------------------------------------------------------
class Term(StrEnum):
    MONTH = "P1M"
    YEAR = "P1Y"


def _add_months(moment: datetime, months: int) -> datetime:
    years, month_index = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + years, month_index + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Reservation:
    ptus: int
    price_per_ptu: Decimal  # for the whole term
    start: datetime  # UTC, on the hour
    term: Term
    deployment_type: DeploymentType
    _hours: dict[datetime, Decimal] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.start.utcoffset() != timedelta(0) or self.start != self.start.replace(minute=0, second=0,
                                                                                       microsecond=0):
            raise ValueError(f"reservation start must be a UTC hour, got {self.start!r}")
        if self.ptus <= 0 or self.price_per_ptu < 0:
            raise ValueError("a reservation needs ptus > 0 and a price >= 0")

    @property
    def end(self) -> datetime:
        return _add_months(self.start, 1 if self.term is Term.MONTH else 12)

    @property
    def hours(self) -> int:
        return (self.end - self.start) // HOUR

    def hour_share(self, hour: datetime, quantum: Decimal = QUANTUM) -> Decimal:
        """This reservation's cost in ``hour``: the term's total spread exactly over the term's hours."""
        if not self.start <= hour < self.end:
            return Decimal(0)
        if not self._hours:
            with decimal.localcontext(_EXACT):
                term_total = self.ptus * self.price_per_ptu
            shares = allocate(term_total, dict.fromkeys(range(self.hours), 1), quantum)
            self._hours.update({self.start + i * HOUR: share for i, share in enumerate(shares.values())})
        return self._hours[hour]


@dataclass(frozen=True)
class PtuRates:
    """What a deployment's PTUs cost: list rates per PTU-hour by deployment type (the deployment's
    region's rates), the reservations covering it, and optionally its capacity in weighted tokens."""

    hourly: Mapping[DeploymentType, Decimal]
    reservations: tuple[Reservation, ...] = ()
    tokens_per_ptu_hour: int | None = None

    def list_rate(self, version: Deployment) -> Decimal:
        kind = version.kind
        rate = None if kind is None else self.hourly.get(kind.deployment_type)
        if rate is None:
            raise ValueError(f"no PTU-hour rate for deployment {version.name!r} (SKU {version.sku})")
        return rate


# -- a month of one deployment ---------------------------------------------------------------------
class LineKind(StrEnum):
    USAGE = "usage"  # a subscription's share of an hour
    IDLE = "idle"  # unused capacity of an hour (subscription = UNALLOCATED)
    IDLE_SPREAD = "idle-spread"  # the month's unused capacity spread over its users (idle="spread")


@dataclass(frozen=True)
class AllocationLine:
    deployment: str
    subscription_id: str  # or UNALLOCATED
    hour: datetime  # the hour; the month's start for idle-spread lines
    cost: Decimal
    weight: int  # capacity-weighted (or, flagged, total) tokens behind the share
    kind: LineKind
    weight_basis: WeightBasis
    apim_service: str = ""  # the gateway of the subscription ("" when the usage names none)


_User = tuple[str, str]  # (subscription id, APIM service): who is charged a share


@dataclass(frozen=True)
class _Hour:
    total: Decimal  # what Azure bills for the hour (reservation share + prorated list part)
    idle_reservation: Decimal  # reserved PTUs not deployed in the hour
    ptu_hours: Fraction
    model: str | None  # the provisioned model in force (None: not provisioned in the hour)


def _hour(history: DeploymentCatalog, name: str, start: datetime, rates: PtuRates, quantum: Decimal) -> _Hour:
    reservations = [r for r in rates.reservations if r.start <= start < r.end]
    reserved_by_type: dict[DeploymentType, int] = {}
    for reservation in reservations:
        reserved_by_type[reservation.deployment_type] = reserved_by_type.get(reservation.deployment_type, 0) \
            + reservation.ptus
    reservation_cost = sum((r.hour_share(start, quantum) for r in reservations), Decimal(0))
    reserved_total = sum(reserved_by_type.values())

    above_reservation, covered, ptu_hours, model = Fraction(0), Fraction(0), Fraction(0), None
    for lower, upper, version in history.changes_in(name, start, start + HOUR):
        if not version.provisioned:
            continue  # billed per token, not here
        if version.ptus is None:
            raise ValueError(f"provisioned deployment {version.name!r} (from {version.effective_from}) has no PTUs")
        part = Fraction((upper - lower) // timedelta(microseconds=1), HOUR // timedelta(microseconds=1))
        kind = version.kind
        reserved = min(version.ptus, reserved_by_type.get(kind.deployment_type, 0)) if kind else 0
        above_reservation += (version.ptus - reserved) * Fraction(rates.list_rate(version)) * part
        covered += reserved * part
        ptu_hours += version.ptus * part
        model = version.model
    idle = Decimal(0)
    if reserved_total:
        idle = _to_quantum(Fraction(reservation_cost) * (reserved_total - covered) / reserved_total, quantum)
    return _Hour(_to_quantum(above_reservation, quantum) + reservation_cost, idle, ptu_hours, model)


def _usage_by_hour(rows: Iterable[UsageRow], name: str) -> dict[datetime, dict[_User, Counters]]:
    by_hour: dict[datetime, dict[_User, Counters]] = {}
    for row in rows:
        if row.granularity is not Granularity.HOUR or name_key(row.key.deployment) != name_key(name):
            continue
        hour = by_hour.setdefault(row.period_start.astimezone(UTC), {})
        user = (row.subscription_id, row.key.apim_service)
        hour[user] = hour.get(user, Counters()) + row.counters
    return by_hour


def allocate_month(name: str, history: Sequence[Deployment], usage: Iterable[UsageRow], rates: PtuRates,
                   month: datetime, *, idle: Literal["unallocated", "spread"] = "unallocated",
                   quantum: Decimal = QUANTUM) -> list[AllocationLine]:
    """Every hour of ``month`` (UTC) of deployment ``name``: its PTU cost split into lines.

    ``history`` holds the deployment's versions (``DeploymentCatalog.history(name)``); ``usage``
    its hour rows (rows of other deployments and other granularities are ignored). The lines of an
    hour add up to that hour's cost exactly, so the month's lines add up to the month's bill.
    """
    catalog = DeploymentCatalog(history)
    start = Granularity.MONTH.period_start(month)
    end = Granularity.MONTH.ceil(start + HOUR)
    usage_by_hour = _usage_by_hour(usage, name)
    lines: list[AllocationLine] = []
    hour = start
    while hour < end:
        lines.extend(_hour_lines(catalog, name, hour, rates, usage_by_hour.get(hour, {}), quantum))
        hour += HOUR
    return spread_idle(lines, name, start, quantum) if idle == "spread" else lines


def _hour_lines(catalog: DeploymentCatalog, name: str, hour: datetime, rates: PtuRates,
                users: Mapping[_User, Counters], quantum: Decimal) -> list[AllocationLine]:
    cost = _hour(catalog, name, hour, rates, quantum)
    deployed = cost.total - cost.idle_reservation
    weights = {user: capacity_weight(cost.model, c) for user, c in users.items()} if cost.model is not None else {}
    positive = {user: w.tokens for user, w in weights.items() if w.tokens > 0}
    lines = []
    used = Decimal(0)
    if positive and deployed > 0:
        used = deployed
        if rates.tokens_per_ptu_hour and cost.ptu_hours:
            utilisation = min(Fraction(1), sum(positive.values()) / (cost.ptu_hours * rates.tokens_per_ptu_hour))
            used = _to_quantum(Fraction(deployed) * utilisation, quantum)
        if used > 0:
            for (sub, service), share in allocate(used, positive, quantum).items():
                lines.append(AllocationLine(name, sub, hour, share, positive[sub, service], LineKind.USAGE,
                                            weights[sub, service].basis, service))
    unused = cost.total - used
    if unused > 0:
        lines.append(AllocationLine(name, UNALLOCATED, hour, unused, 0, LineKind.IDLE, WeightBasis.NONE))
    return lines


def spread_idle(lines: list[AllocationLine], name: str, month: datetime, quantum: Decimal) -> list[AllocationLine]:
    """The month's unallocated cost spread over its users (subscription, APIM service) by their
    weighted tokens (exact)."""
    idle_total = sum((line.cost for line in lines if line.kind is LineKind.IDLE), Decimal(0))
    month_weights: dict[_User, int] = {}
    bases: dict[_User, set[WeightBasis]] = {}
    for line in lines:
        if line.kind is LineKind.USAGE:
            user = (line.subscription_id, line.apim_service)
            month_weights[user] = month_weights.get(user, 0) + line.weight
            bases.setdefault(user, set()).add(line.weight_basis)
    if not idle_total or not any(month_weights.values()):
        return lines  # nobody used the deployment this month: the idle cost stays unallocated
    kept = [line for line in lines if line.kind is not LineKind.IDLE]
    spread = [AllocationLine(name, sub, month, share, month_weights[sub, service], LineKind.IDLE_SPREAD,
                             _one_basis(bases[sub, service]), service)
              for (sub, service), share in allocate(idle_total, month_weights, quantum).items()]
    return kept + spread


def _one_basis(bases: set[WeightBasis]) -> WeightBasis:
    # Hours of an unknown model weigh total tokens; if any did, the month's weight is flagged too.
    return WeightBasis.TOTAL_TOKENS if WeightBasis.TOTAL_TOKENS in bases else WeightBasis.CAPACITY


def month_total(lines: Iterable[AllocationLine]) -> Decimal:
    return sum((line.cost for line in lines), Decimal(0))


def hour_costs(name: str, history: Sequence[Deployment], rates: PtuRates, month: datetime,
               quantum: Decimal = QUANTUM) -> dict[datetime, Decimal]:
    """What Azure bills for each hour of ``month`` for this deployment (and its reservations)."""
    catalog = DeploymentCatalog(history)
    start = Granularity.MONTH.period_start(month)
    end = Granularity.MONTH.ceil(start + HOUR)
    costs = {}
    hour = start
    while hour < end:
        total = _hour(catalog, name, hour, rates, quantum).total
        if total:
            costs[hour] = total
        hour += HOUR
    return costs

