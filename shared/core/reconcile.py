"""Reconciliation: what Azure billed for Azure OpenAI in a month against what this project allocated.

**Granularity: (account, meter).** Azure's cost exports carry Azure OpenAI charges on the
*account* resource (``.../providers/Microsoft.CognitiveServices/accounts/{name}``) with the meter
naming the model, version, deployment type and token kind (``gpt-4o-0806-Inp-glbl Tokens``); a
deployment is not a billed resource of its own. So the bill and the allocation are compared per
account and meter: an allocated cost line finds its account from its deployment's resource id
(``.../accounts/{name}/deployments/{d}``) or, failing that, from the deployment catalog, and its
meter by Azure's ``meterId`` (which the price came from). The deployments behind a line are listed
for context. A line whose account or meter cannot be found stays on its own line (``not-on-bill``),
so nothing is silently merged.

**What is compared.** ``billed`` is the bill rows' cost as the reader took it (FOCUS:
``EffectiveCost``, which equals ``BilledCost`` for every on-demand charge and carries a
reservation's amortised share for committed usage, as the PTU allocation does; classic exports:
``CostInBillingCurrency``); ``allocated`` is the priced cost lines charged to teams; ``idle`` the
``unallocated-capacity`` lines (provisioned capacity nobody used). ``difference = billed −
allocated − idle``. The report's *unallocated* total is ``billed − allocated``: the part of the
bill no team carries.

**Likely reasons**, per line (more than one may apply):

- ``rounding``: ``|difference| ≤ tolerance``; the difference is shown as 0;
- ``negotiated-discount`` / ``systematic-markup``: the line's billed/expected ratio is the one most
  lines share (within 1 %, on at least two lines): a contract price (EA/MCA discount) or a currency
  conversion, not usage;
- ``bypassed-apim``: billed above allocated on a token meter the logs know: traffic that reached the
  account without going through APIM (or logs that were lost);
- ``billed-not-in-logs``: billed, but nothing was allocated on that account and meter; the report
  also lists accounts the logs never mention at all;
- ``ptu-idle``: part of the line is idle provisioned capacity (the ``unallocated-capacity`` lines);
- ``ptu-rate``: a provisioned line differs otherwise (reservation or PTU rate not as configured);
- ``allocated-above-bill``: allocated more than billed, without a systematic ratio;
- ``not-on-bill``: allocated, but the bill has no such account and meter (meter id unknown,
  export incomplete, or a deployment the catalog places elsewhere);
- ``unpriced-usage``: some of the line's usage had no price, so ``allocated`` understates it;
- ``currency-differs``: bill and allocation are in different currencies (the difference means little).
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from shared.core.cost_lines import UNALLOCATED_CAPACITY, CostLine
from shared.core.deployments import DeploymentCatalog
from shared.core.months import month_start, next_month

DEFAULT_TOLERANCE = Decimal("0.01")
RATIO_AGREEMENT = Decimal("0.01")  # ratios within 1 % of each other are "the same" ratio
SHARE_QUANTUM = Decimal("0.000001")
PTU_TOKEN_KIND = "ptu_hour"
_EXACT = decimal.Context(prec=80, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
_ACCOUNT = re.compile(r"^(?P<account>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                      r"Microsoft\.CognitiveServices/accounts/(?P<name>[^/]+))(?:/.*)?$", re.IGNORECASE)


class Reason(StrEnum):
    ROUNDING = "rounding"
    NEGOTIATED_DISCOUNT = "negotiated-discount"
    SYSTEMATIC_MARKUP = "systematic-markup"
    BYPASSED_APIM = "bypassed-apim"
    BILLED_NOT_IN_LOGS = "billed-not-in-logs"
    PTU_IDLE = "ptu-idle"
    PTU_RATE = "ptu-rate"
    ALLOCATED_ABOVE_BILL = "allocated-above-bill"
    NOT_ON_BILL = "not-on-bill"
    UNPRICED_USAGE = "unpriced-usage"
    CURRENCY_DIFFERS = "currency-differs"


REASON_TEXT: dict[Reason, str] = {
    Reason.ROUNDING: "within the rounding tolerance (shown as 0)",
    Reason.NEGOTIATED_DISCOUNT: "billed below list by the ratio most lines share: a negotiated discount",
    Reason.SYSTEMATIC_MARKUP: "billed above list by the ratio most lines share: contract price or currency",
    Reason.BYPASSED_APIM: "billed above allocated: traffic that bypassed APIM (or missing logs)",
    Reason.BILLED_NOT_IN_LOGS: "billed, but never seen in the gateway logs",
    Reason.PTU_IDLE: "includes idle provisioned capacity (unallocated-capacity lines)",
    Reason.PTU_RATE: "provisioned cost differs: reservation or PTU rate not as configured",
    Reason.ALLOCATED_ABOVE_BILL: "allocated more than billed (prices above the billed rate?)",
    Reason.NOT_ON_BILL: "allocated, but not on the bill (meter or account not matched)",
    Reason.UNPRICED_USAGE: "some usage had no price: allocated understates it",
    Reason.CURRENCY_DIFFERS: "bill and allocation are in different currencies",
}


@dataclass(frozen=True)
class BilledRow:
    """One usage row of Azure's cost export (read by ``shared.adapters.cost_exports``)."""

    resource_id: str
    charge_date: date  # the UTC day of the charge
    cost: Decimal  # see the module docstring for which column
    currency: str
    meter_id: str | None = None
    meter_name: str | None = None
    resource_name: str | None = None
    meter_category: str | None = None
    meter_subcategory: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None
    pricing_category: str | None = None  # Standard / Committed (classic PricingModel mapped)
    source: str = ""  # file and row, to trace a number back


@dataclass(frozen=True)
class ReconciliationLine:
    account_id: str | None  # the account's ARM id as the bill (or the catalog) spells it; None: not found
    account_name: str | None
    meter_id: str | None
    meter_name: str | None
    deployments: tuple[str, ...]
    token_kinds: tuple[str, ...]
    billed: Decimal
    allocated: Decimal  # priced lines charged to teams
    idle: Decimal  # unallocated-capacity lines
    unpriced_lines: int
    difference: Decimal  # billed - allocated - idle, exact
    shown_difference: Decimal  # 0 within the tolerance
    share_of_bill: Decimal | None  # billed / total billed, to 6 places; None when nothing was billed
    ratio: Decimal | None  # billed / (allocated + idle), when both are positive
    reasons: tuple[Reason, ...]
    currency: str | None


@dataclass(frozen=True)
class ReconciliationReport:
    month: datetime
    tolerance: Decimal
    currency: str | None  # the bill's currency (the allocation's when nothing was billed)
    lines: tuple[ReconciliationLine, ...]
    total_billed: Decimal
    total_allocated: Decimal
    total_idle: Decimal
    total_unallocated: Decimal  # billed - allocated: the part of the bill no team carries
    total_difference: Decimal  # billed - allocated - idle
    unpriced_lines: int
    systematic_ratio: Decimal | None
    accounts_not_in_logs: tuple[str, ...]
    notes: tuple[str, ...]


def account_of(resource_id: str | None) -> tuple[str, str] | None:
    """(account id, account name) of an Azure OpenAI account or deployment resource id; ``None`` otherwise."""
    if not resource_id:
        return None
    match = _ACCOUNT.match(resource_id.strip())
    return (match["account"], match["name"]) if match else None


def is_openai_resource(resource_id: str | None) -> bool:
    return account_of(resource_id) is not None


@dataclass
class _Bucket:
    account_id: str | None = None
    account_name: str | None = None
    meter_id: str | None = None
    meter_name: str | None = None
    billed: Decimal = Decimal(0)
    allocated: Decimal = Decimal(0)
    idle: Decimal = Decimal(0)
    unpriced: int = 0
    billed_rows: int = 0
    allocated_lines: int = 0
    bill_currency: str | None = None
    line_currency: str | None = None
    deployments: set[str] = field(default_factory=set)
    token_kinds: set[str] = field(default_factory=set)


def _meter_key(meter_id: str | None, meter_name: str | None, fallback: str) -> str:
    if meter_id:
        return "id:" + meter_id.strip().lower()
    if meter_name:
        return "name:" + meter_name.strip().lower()
    return fallback


def _line_account(line: CostLine, catalog: DeploymentCatalog | None) -> tuple[str, str] | None:
    found = account_of(line.resource_id)
    if found is None and catalog is not None:
        version = catalog.in_force(line.deployment, line.charge_start)
        found = account_of(version.account) if version is not None else None
    return found


def _add(total: Decimal, amount: Decimal) -> Decimal:
    with decimal.localcontext(_EXACT):
        return total + amount


def _buckets(billed_rows: Iterable[BilledRow], allocated: Iterable[CostLine], start: datetime, end: datetime,
             catalog: DeploymentCatalog | None) -> tuple[dict[tuple[str, str], _Bucket], list[str]]:
    buckets: dict[tuple[str, str], _Bucket] = {}
    notes: list[str] = []
    outside, zero_committed = 0, 0
    for row in billed_rows:
        if not start.date() <= row.charge_date < end.date():
            outside += 1
            continue
        account = account_of(row.resource_id)
        if account is None:
            continue  # readers keep Azure OpenAI accounts only; anything else passed in is not ours to judge
        key = (account[0].lower(), _meter_key(row.meter_id, row.meter_name, "unknown-meter"))
        bucket = buckets.setdefault(key, _Bucket(account[0], row.resource_name or account[1]))
        bucket.meter_id = bucket.meter_id or row.meter_id
        bucket.meter_name = bucket.meter_name or row.meter_name
        bucket.billed = _add(bucket.billed, row.cost)
        bucket.billed_rows += 1
        bucket.bill_currency = bucket.bill_currency or row.currency
        if row.pricing_category == "Committed" and row.cost == 0:
            zero_committed += 1
    if outside:
        notes.append(f"{outside} bill rows outside the month were left out")
    if zero_committed:
        notes.append(f"{zero_committed} committed (reservation) usage rows were billed 0: an actual-cost export "
                     "bills a reservation as a purchase; reconcile PTU reservations with an amortized export")
    for line in allocated:
        if not start <= line.charge_start < end:
            continue
        account = _line_account(line, catalog)
        account_key = account[0].lower() if account else ""
        fallback = f"unmatched:{line.deployment.lower()}|{line.model}|{line.token_kind}"
        key = (account_key, _meter_key(line.meter_id, None, fallback))
        bucket = buckets.setdefault(key, _Bucket(account[0] if account else None, account[1] if account else None))
        bucket.meter_id = bucket.meter_id or line.meter_id
        bucket.deployments.add(line.deployment)
        bucket.token_kinds.add(line.token_kind)
        bucket.allocated_lines += 1
        bucket.line_currency = bucket.line_currency or line.currency
        cost = line.billed_cost
        if cost is None:
            bucket.unpriced += 1
        elif line.subscription_id == UNALLOCATED_CAPACITY:
            bucket.idle = _add(bucket.idle, cost)
        else:
            bucket.allocated = _add(bucket.allocated, cost)
    return buckets, notes


def _ratio(bucket: _Bucket) -> Decimal | None:
    expected = bucket.allocated + bucket.idle
    if bucket.billed <= 0 or expected <= 0:
        return None
    return bucket.billed / expected  # default context: a ratio for reasons and display, not money


def _systematic_ratio(buckets: Iterable[_Bucket], tolerance: Decimal) -> Decimal | None:
    """The billed/expected ratio at least two lines (and at least half of the differing ones) share."""
    ratios = sorted(r for b in buckets
                    if abs(b.billed - b.allocated - b.idle) > tolerance and (r := _ratio(b)) is not None)
    best: list[Decimal] = []
    for candidate in ratios:
        agreeing = [r for r in ratios if abs(r - candidate) <= RATIO_AGREEMENT * candidate]
        if len(agreeing) > len(best):
            best = agreeing
    if len(best) < 2 or 2 * len(best) < len(ratios):
        return None
    ratio = best[len(best) // 2]
    return None if abs(ratio - 1) <= RATIO_AGREEMENT else ratio


def _reasons(bucket: _Bucket, difference: Decimal, tolerance: Decimal, systematic: Decimal | None) -> list[Reason]:
    reasons: list[Reason] = []
    is_ptu = PTU_TOKEN_KIND in bucket.token_kinds or "provisioned" in (bucket.meter_name or "").lower()
    if bucket.unpriced:
        reasons.append(Reason.UNPRICED_USAGE)
    if bucket.idle > 0:
        reasons.append(Reason.PTU_IDLE)
    if bucket.bill_currency and bucket.line_currency and bucket.bill_currency != bucket.line_currency:
        reasons.append(Reason.CURRENCY_DIFFERS)
    if abs(difference) <= tolerance:
        if difference:
            reasons.append(Reason.ROUNDING)
        return reasons
    if bucket.billed_rows == 0:
        return [*reasons, Reason.NOT_ON_BILL]
    if bucket.allocated_lines == 0:
        return [*reasons, Reason.BILLED_NOT_IN_LOGS]
    ratio = _ratio(bucket)
    if systematic is not None and ratio is not None and abs(ratio - systematic) <= RATIO_AGREEMENT * systematic:
        return [*reasons, Reason.NEGOTIATED_DISCOUNT if systematic < 1 else Reason.SYSTEMATIC_MARKUP]
    if is_ptu:
        return [*reasons, Reason.PTU_RATE]
    return [*reasons, Reason.BYPASSED_APIM if difference > 0 else Reason.ALLOCATED_ABOVE_BILL]


def reconcile(billed_rows: Sequence[BilledRow], allocated: Sequence[CostLine], month: datetime,
              tolerance: Decimal = DEFAULT_TOLERANCE, catalog: DeploymentCatalog | None = None) -> ReconciliationReport:
    """Compare ``month``'s bill rows with the month's cost lines, per (account, meter).

    ``catalog`` places lines without a deployment resource id on their account. Rows and lines
    outside the month are left out (a note counts the rows).
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    start = month_start(month)
    end = next_month(start)
    buckets, notes = _buckets(billed_rows, allocated, start, end, catalog)
    with decimal.localcontext(_EXACT):
        total_billed = sum((b.billed for b in buckets.values()), Decimal(0))
    systematic = _systematic_ratio(buckets.values(), tolerance)
    lines = []
    for key in sorted(buckets, key=lambda k: (k[0] == "", k)):
        bucket = buckets[key]
        with decimal.localcontext(_EXACT):
            difference = bucket.billed - bucket.allocated - bucket.idle
        share = (bucket.billed / total_billed).quantize(SHARE_QUANTUM) if total_billed else None
        ratio = _ratio(bucket)
        lines.append(ReconciliationLine(
            account_id=bucket.account_id, account_name=bucket.account_name, meter_id=bucket.meter_id,
            meter_name=bucket.meter_name, deployments=tuple(sorted(bucket.deployments)),
            token_kinds=tuple(sorted(bucket.token_kinds)), billed=bucket.billed, allocated=bucket.allocated,
            idle=bucket.idle, unpriced_lines=bucket.unpriced, difference=difference,
            shown_difference=Decimal(0) if abs(difference) <= tolerance else difference, share_of_bill=share,
            ratio=ratio.quantize(SHARE_QUANTUM) if ratio is not None else None,
            reasons=tuple(_reasons(bucket, difference, tolerance, systematic)),
            currency=bucket.bill_currency or bucket.line_currency))
    logged_accounts = {b.account_id.lower() for b in buckets.values() if b.account_id and b.allocated_lines}
    not_in_logs = sorted({b.account_id for b in buckets.values()
                          if b.account_id and b.billed_rows and b.account_id.lower() not in logged_accounts})
    currencies = sorted({c for b in buckets.values() for c in (b.bill_currency, b.line_currency) if c})
    if len(currencies) > 1:
        notes.append(f"more than one currency ({', '.join(currencies)}): differences mix currencies")
    bill_currencies = sorted({b.bill_currency for b in buckets.values() if b.bill_currency})
    with decimal.localcontext(_EXACT):
        total_allocated = sum((b.allocated for b in buckets.values()), Decimal(0))
        total_idle = sum((b.idle for b in buckets.values()), Decimal(0))
        return ReconciliationReport(
            month=start, tolerance=tolerance, currency=next(iter(bill_currencies or currencies), None),
            lines=tuple(lines), total_billed=total_billed, total_allocated=total_allocated, total_idle=total_idle,
            total_unallocated=total_billed - total_allocated,
            total_difference=total_billed - total_allocated - total_idle,
            unpriced_lines=sum(b.unpriced for b in buckets.values()),
            systematic_ratio=systematic.quantize(SHARE_QUANTUM) if systematic is not None else None,
            accounts_not_in_logs=tuple(not_in_logs), notes=tuple(notes))
