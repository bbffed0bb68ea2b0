"""Cost at read time: the pricing in force, costs of usage-report rows, the monthly chargeback, and
the month's cost lines (FOCUS export, reconciliation).

Stored usage rows stay token-only on purpose: cost is computed whenever a report is read, from
what is in force for each row's period (deployment catalog, retail meters, negotiated rates, the
price file for uncatalogued deployments).  A wrong or late price is then fixed once and every report
— history included — is re-priced; nothing stored has to be rewritten.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Literal, Protocol, cast

from shared.core.cost_lines import UNALLOCATED_CAPACITY, CostLine
from shared.core.costing_rules import (
    Pricing,
    PtuPolicy,
    cost_of_lines,
    meter_change_moments,
    period_end,
    refined_cost,
    token_cost,
    token_lines,
)
from shared.core.deployments import DeploymentCatalog, DeploymentRepository, name_key
from shared.core.meters import MeterFile, PriceBook, StoredBook, load_default_meters
from shared.core.months import next_month
from shared.core.pricing import (
    Cost,
    Price,
    PriceFileError,
    PriceTable,
    parse_price_file,
    sum_costs,
    with_overrides,
)
from shared.core.ptu_lines import KeyedLine, ptu_cost_lines
from shared.core.rate_overrides import RateOverride, RateOverrideBook
from shared.core.usage import Counters, Granularity, UsageKey, UsageRow, is_chargeable
from shared.errors import ChargebackError, SettingError
from shared.ports import PriceOverrideRepository, UsageRepository

DEFAULT_PRICES = Path(__file__).resolve().parent.parent / "pricing" / "prices.default.json"
OVERRIDES_TTL_SECONDS = 60.0


class MeterBookSource(Protocol):
    def load(self, currency: str) -> StoredBook: ...


class RateOverrideRepository(Protocol):
    """Negotiated rates per meter family (``shared.adapters.rate_override_tables``)."""

    def list_overrides(self) -> list[RateOverride]: ...

    def put_override(self, override: RateOverride) -> None: ...

    def delete_override(self, model: str, deployment_type: str, effective_from: date) -> bool: ...


@cache
def default_meters() -> MeterFile:
    """The shipped meter prices (parsed once per process)."""
    return load_default_meters()


def merged_meters(currency: str, stored: StoredBook | None) -> tuple[PriceBook | None, date | None]:
    """The synced book laid over the shipped default (a synced row wins for the same key and start),
    and its as-of date: the last sync's, else the shipped file's."""
    shipped = default_meters()
    base = shipped.book.rows if shipped.book.currency == currency else ()
    synced = stored.book.rows if stored is not None and stored.book.currency == currency else ()
    if not base and not synced:
        return None, None
    taken = {(row.key, row.effective_start) for row in synced}
    book = PriceBook(currency, (*synced, *(row for row in base if (row.key, row.effective_start) not in taken)))
    if stored is not None and stored.as_of is not None:
        return book, stored.as_of.date()
    return book, date.fromisoformat(shipped.as_of) if base else None


@dataclass(frozen=True)
class _Stored:
    """What the catalog read from storage, with what is derived from it once (not per request)."""

    book: PriceBook | None
    as_of: date | None
    moments: dict[str, tuple[datetime, ...]]
    deployments: DeploymentCatalog
    overrides: RateOverrideBook
    fingerprint: str  # digest of what was read (PriceCatalog.current_with_fingerprint)


class PriceCatalog:
    """The pricing in force: the price file (parsed once per change of the file) with the prices
    table laid over it, plus the meter book, deployment catalog and negotiated rates from storage
    (each read at most once a minute per process)."""

    def __init__(self, path: Path | None, overrides: PriceOverrideRepository | None = None, *,
                 meters: MeterBookSource | None = None, deployments: DeploymentRepository | None = None,
                 rate_overrides: RateOverrideRepository | None = None, ptu: PtuPolicy | None = None) -> None:
        self.path = path or DEFAULT_PRICES
        self._custom = path is not None
        self._overrides = overrides
        self._meters = meters
        self._deployments = deployments
        self._rate_overrides = rate_overrides
        self._ptu = ptu or PtuPolicy()
        self._cache: tuple[float, PriceTable] | None = None
        self._overrides_cache: tuple[float, list[tuple[Price, str]]] | None = None
        self._stored_cache: tuple[float, str, _Stored] | None = None

    def file_table(self) -> PriceTable:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            raise self._error(f"price file {self.path} not found") from None
        if self._cache is None or self._cache[0] != mtime:
            try:
                table = parse_price_file(self.path.read_text(encoding="utf-8"), self.path.name)
            except PriceFileError as exc:
                raise self._error(str(exc)) from None
            self._cache = (mtime, table)
        return self._cache[1]

    def current(self) -> Pricing:
        return self._current()[0]

    def current_with_fingerprint(self) -> tuple[Pricing, str]:
        """The pricing in force and a digest of everything it was built from (price file, prices
        table, meter book, deployment catalog, negotiated rates, PTU policy): equal digests, equal
        costs.  A materialized report is kept under it (:mod:`shared.services.month_csv`)."""
        pricing, table, stored = self._current()
        text = f"{stored.fingerprint}|{table!r}|{self._ptu!r}"
        return pricing, hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _current(self) -> tuple[Pricing, PriceTable, _Stored]:
        table = self.file_table()
        if self._overrides is not None:
            # The override table is read at most once a minute per process: every report needs prices,
            # and a table round trip per request was a third of a one-subscription report's latency.
            now = time.monotonic()
            if self._overrides_cache is None or now - self._overrides_cache[0] > OVERRIDES_TTL_SECONDS:
                self._overrides_cache = (now, list(self._overrides.list_prices()))
            overrides = self._overrides_cache[1]
            foreign = sorted({currency for _, currency in overrides if currency != table.currency})
            if foreign:
                raise ChargebackError(f"the prices table holds prices in {', '.join(foreign)} but the price file "
                                      f"is in {table.currency}; one currency only")
            table = with_overrides(table, (price for price, _ in overrides), "prices table")
        stored = self._stored(table.currency)
        return (Pricing.of(table, meters=stored.book, meters_as_of=stored.as_of, meter_moments=stored.moments,
                           catalog=stored.deployments, overrides=stored.overrides, ptu=self._ptu), table, stored)

    def refresh(self) -> None:
        """Forget what was read from storage (after this process changed it: read again on next use)."""
        self._stored_cache = None
        self._overrides_cache = None

    def _stored(self, currency: str) -> _Stored:
        now = time.monotonic()
        cached = self._stored_cache
        if cached is not None and cached[1] == currency and now - cached[0] <= OVERRIDES_TTL_SECONDS:
            return cached[2]
        book, as_of = merged_meters(currency, self._meters.load(currency) if self._meters is not None else None)
        deployments = self._deployments.all() if self._deployments is not None else []
        overrides = self._rate_overrides.list_overrides() if self._rate_overrides is not None else []
        # what the pricing is built from, in the order the stores list it (a different order only
        # makes a different digest: a kept report is then rendered again, never served wrong)
        read = f"{book!r}|{as_of!r}|{deployments!r}|{overrides!r}"
        stored = _Stored(book, as_of, meter_change_moments(book), DeploymentCatalog(deployments),
                         RateOverrideBook(overrides), hashlib.sha256(read.encode("utf-8")).hexdigest())
        self._stored_cache = (now, currency, stored)
        return stored

    def _error(self, message: str) -> ChargebackError:
        return SettingError("PRICES_PATH", message) if self._custom else ChargebackError(message)


SINGLE_PARTITION_READS = 20  # above this many subscriptions, month costs read days in one range query


def _read(repository: UsageRepository, granularity: Granularity, start: datetime, end: datetime,
          subscriptions: Iterable[str] | None) -> list[UsageRow]:
    if subscriptions is None:
        return repository.read_all(granularity, start, end)
    wanted = set(subscriptions)
    if len(wanted) > SINGLE_PARTITION_READS:
        # Many subscriptions (a finance report): one RowKey-range query beats a read per partition
        # (1,000 single-partition reads measured 27 s for one month's CSV).
        return [row for row in repository.read_all(granularity, start, end) if row.subscription_id in wanted]
    return [row for sub in sorted(wanted) for row in repository.read(sub, granularity, start, end)]


_FINER = {Granularity.MONTH: Granularity.DAY, Granularity.DAY: Granularity.HOUR}


def _missing_finer(row: UsageRow, pricing: Pricing) -> list[CostLine]:
    """A period whose prices change inside it, without its finer rows: every token unpriced, never a
    guess across the change."""
    reason = f"prices or the deployment change inside this {row.granularity.value} and its finer rows are missing"
    return [replace(line, list_unit_price=None, list_cost=None, contracted_unit_price=None, contracted_cost=None,
                    unpriced_reason=reason)
            for line in token_lines(UsageRow(Granularity.HOUR, row.period_start, row.key, row.counters), pricing)]


def token_cost_lines(rows: Sequence[UsageRow], repository: UsageRepository, pricing: Pricing) -> list[list[CostLine]]:
    """The token lines of each row.  A row whose prices (or deployment) change inside its period is
    priced from its finer rows (month -> days -> hours), read from ``repository``."""
    out: list[list[CostLine]] = [[] for _ in rows]
    coarse: dict[Granularity, list[int]] = {}
    for index, row in enumerate(rows):
        if pricing.uniform(row):
            out[index] = token_lines(row, pricing)
        else:
            coarse.setdefault(row.granularity, []).append(index)
    for granularity, indexes in coarse.items():
        finer = _FINER[granularity]
        parents = [rows[i] for i in indexes]
        first = min(r.period_start for r in parents)
        last = max(period_end(granularity, r.period_start) for r in parents)
        children = _read(repository, finer, first, last, {r.subscription_id for r in parents})
        wanted = {(r.period_start, r.key) for r in parents}
        by_parent: dict[tuple[datetime, UsageKey], list[UsageRow]] = {}
        for child in children:
            slot = (granularity.period_start(child.period_start), child.key)
            if slot in wanted:
                by_parent.setdefault(slot, []).append(child)
        flat = [child for slot in by_parent.values() for child in slot]
        priced = iter(token_cost_lines(flat, repository, pricing))
        lines_of = {id(child): next(priced) for child in flat}
        for index in indexes:
            row = rows[index]
            found = by_parent.get((row.period_start, row.key))
            out[index] = ([line for child in found for line in lines_of[id(child)]] if found
                          else _missing_finer(row, pricing))
    return out


def ptu_month_lines(repository: UsageRepository, pricing: Pricing, month: datetime,
                    deployments: Iterable[str] | None = None) -> list[KeyedLine]:
    """Every provisioned hour of ``month`` of ``deployments`` (default: every provisioned deployment in
    the catalog that month), shared over the month's chargeable hour rows."""
    start, end = Granularity.MONTH.period_start(month), next_month(month)
    names = sorted({name_key(n) for n in deployments} if deployments is not None else pricing.catalog.names())
    names = [n for n in names if pricing.provisioned_between(n, start, end)]
    if not names:
        return []
    # Every subscription's hours, whoever asks: a share depends on the others' use of the hour.
    hours = [row for row in repository.read_all(Granularity.HOUR, start, end) if is_chargeable(row.subscription_id)]
    return [line for name in names for line in ptu_cost_lines(name, pricing, hours, start)]


def _months(start: datetime, end: datetime) -> list[datetime]:
    months, month = [], Granularity.MONTH.period_start(start)
    while month < end:
        months.append(month)
        month = next_month(month)
    return months


def _token_costs(rows: Sequence[UsageRow], repository: UsageRepository, pricing: Pricing) -> list[Cost]:
    """Each row's token cost.  Uniform rows (nearly all) are summed directly; rows with a change inside
    their period are priced from their finer rows, once per stretch between changes."""
    changing = [index for index, row in enumerate(rows) if not pricing.uniform(row)]
    refined = dict(zip(changing, _refined_costs([rows[i] for i in changing], repository, pricing), strict=True))
    return [refined[index] if index in refined else token_cost(row, pricing) for index, row in enumerate(rows)]


def _finer_rows(repository: UsageRepository, pricing: Pricing, granularity: Granularity,
                parents: Sequence[UsageRow]) -> dict[tuple[datetime, UsageKey], list[UsageRow]]:
    """The finer rows of ``parents``, by (parent period start, key).  A read of every subscription
    (many parents) is kept for the life of ``pricing`` (one request): a report prices its rows in
    slices, and each slice would otherwise read the whole range again."""
    first = min(r.period_start for r in parents)
    last = max(period_end(granularity, r.period_start) for r in parents)
    subscriptions = {r.subscription_id for r in parents}
    slot = ("finer-rows", granularity, first, last)
    if len(subscriptions) <= SINGLE_PARTITION_READS and slot not in pricing.memo:
        return _by_parent(granularity, _read(repository, _FINER[granularity], first, last, subscriptions))
    if slot not in pricing.memo:
        pricing.memo[slot] = _by_parent(granularity, repository.read_all(_FINER[granularity], first, last))
    return cast(dict[tuple[datetime, UsageKey], list[UsageRow]], pricing.memo[slot])


def _by_parent(granularity: Granularity, children: Iterable[UsageRow]) -> dict[tuple[datetime, UsageKey],
                                                                                list[UsageRow]]:
    parent_start: dict[datetime, datetime] = {}  # few distinct child starts: each mapped once
    by_parent: dict[tuple[datetime, UsageKey], list[UsageRow]] = {}
    for child in children:
        start = parent_start.get(child.period_start)
        if start is None:
            start = parent_start[child.period_start] = granularity.period_start(child.period_start)
        by_parent.setdefault((start, child.key), []).append(child)
    return by_parent


def _refined_costs(rows: Sequence[UsageRow], repository: UsageRepository, pricing: Pricing) -> list[Cost]:
    """What ``cost_of_lines(token_cost_lines(...))`` gives for each (non-uniform) row, without a line
    per finer row: the finer rows of a row are summed per stretch between two change moments and
    priced once (:func:`refined_cost`; a month whose SKU changed once costs two pricings, not 31)."""
    out: list[Cost] = [Cost() for _ in rows]
    coarse: dict[Granularity, list[int]] = {}
    for index, row in enumerate(rows):
        coarse.setdefault(row.granularity, []).append(index)
    for granularity, indexes in coarse.items():
        by_parent = _finer_rows(repository, pricing, granularity, [rows[i] for i in indexes])
        children = {index: by_parent.get((rows[index].period_start, rows[index].key)) for index in indexes}
        uneven = [child for found in children.values() for child in found or () if not pricing.uniform(child)]
        finer = dict(zip(map(id, uneven), _refined_costs(uneven, repository, pricing), strict=True))
        for index in indexes:
            row = rows[index]
            found = children[index]
            if not found:
                out[index] = cost_of_lines(_missing_finer(row, pricing), row.key.model)
                continue
            even = refined_cost(row.key, (c for c in found if id(c) not in finer), pricing)
            out[index] = sum_costs([even, *(finer[id(c)] for c in found if id(c) in finer)]) if finer else even
    return out


def usage_costs(rows: Sequence[UsageRow], repository: UsageRepository, table: PriceTable) -> list[Cost]:
    """One cost per row, with its split.  ``table``: the pricing in force (a plain price table prices
    every deployment by model name).  Token rows are priced per meter of the deployment in force
    (finer rows where something changes inside a period); rows of provisioned deployments carry
    their share of the PTU hours (the month's idle cost, ``unallocated`` or ``spread``, is not on a
    usage row: the chargeback shows it)."""
    pricing = Pricing.of(table)
    token = _token_costs(rows, repository, pricing)
    ptu_by_key: dict[UsageKey, list[CostLine]] = {}
    wanted: dict[datetime, set[str]] = {}
    for row in rows:
        end = period_end(row.granularity, row.period_start)
        if pricing.provisioned_between(row.key.deployment, row.period_start, end):
            for month in _months(row.period_start, end):
                wanted.setdefault(month, set()).add(row.key.deployment)
    for month, names in wanted.items():
        slot = ("ptu-month-lines", month, frozenset(name_key(n) for n in names))
        if slot not in pricing.memo:
            pricing.memo[slot] = ptu_month_lines(repository, pricing, month, names)
        month_lines = cast(list[KeyedLine], pricing.memo[slot])
        for key, line in month_lines:
            if key is not None:
                ptu_by_key.setdefault(key, []).append(line)
    costs = []
    for row, cost in zip(rows, token, strict=True):
        ptu = ptu_by_key.get(row.key)
        if ptu:
            end = period_end(row.granularity, row.period_start)
            cost = cost + cost_of_lines([line for line in ptu if row.period_start <= line.charge_start < end])
        costs.append(cost)
    return costs


def month_cost_lines(repository: UsageRepository, pricing: PriceTable, month: datetime,
                     subscriptions: Sequence[str] | None = None) -> list[CostLine]:
    """Every cost line of ``month`` (UTC month start): token lines per day row (per hour where
    something changes inside a day) of every chargeable subscription, or of ``subscriptions``, and
    the provisioned hours' lines; ``unallocated-capacity`` lines only when every subscription is asked."""
    priced = Pricing.of(pricing)
    start = Granularity.MONTH.period_start(month)
    days = [row for row in _read(repository, Granularity.DAY, start, next_month(start), subscriptions)
            if is_chargeable(row.subscription_id)]
    lines = [line for row_lines in token_cost_lines(days, repository, priced) for line in row_lines]
    wanted = None if subscriptions is None else set(subscriptions)
    for _, line in ptu_month_lines(repository, priced, start):
        if wanted is None or line.subscription_id in wanted:
            lines.append(line)
    return lines


# -- monthly chargeback ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ChargebackLine:
    subscription_id: str  # or UNALLOCATED_CAPACITY (then ``deployment`` names the deployment)
    counters: Counters
    cost: Cost
    deployment: str = ""
    apim_service: str = ""  # the gateway's APIM service ("" when none or merged)
    service_tier: str = ""  # "priority": the usage served at the priority tier; "" the rest


@dataclass(frozen=True)
class Chargeback:
    """A month's chargeback: one line per subscription, then one ``unallocated-capacity`` line per
    provisioned deployment with idle cost, at the prices of ``price_source``."""

    month: datetime
    currency: str
    price_source: str
    lines: tuple[ChargebackLine, ...]
    price_as_of: date | None = None
    idle: Literal["unallocated", "spread"] = "unallocated"

    @property
    def total_counters(self) -> Counters:
        return sum((line.counters for line in self.lines), Counters())

    @property
    def total_cost(self) -> Cost:
        return sum_costs(line.cost for line in self.lines)


def monthly_chargeback(repository: UsageRepository, prices: Callable[[], PriceTable], month: datetime,
                       subscriptions: Sequence[str] | None = None) -> Chargeback:
    """One line per subscription (per APIM service: two gateways' same-named subscriptions are two
    lines; per service tier: a subscription's priority usage, priced by the Priority meters, is a line
    of its own), from the month's rows (a month whose prices or deployment change inside it is priced
    from its days, or hours), plus its share of provisioned hours.

    ``prices``: the pricing in force (asked once, before anything is read).  ``subscriptions``:
    only these (one single-partition read each, and no unallocated lines); ``None`` = all of them.
    The synthetic probe's traffic (``synthetic-probe``) is never charged, so it never has a line.
    """
    pricing = Pricing.of(prices())
    start = Granularity.MONTH.period_start(month)
    end = next_month(start)
    rows = [row for row in _read(repository, Granularity.MONTH, start, end,
                                 None if subscriptions is None else dict.fromkeys(subscriptions))
            if is_chargeable(row.subscription_id)]
    counters: dict[tuple[str, str, str], Counters] = {}  # by (subscription, APIM service, service tier)
    costs: dict[tuple[str, str, str], Cost] = {}
    for row, cost in zip(rows, _token_costs(rows, repository, pricing), strict=True):
        holder = (row.subscription_id, row.key.apim_service, row.key.service_tier)
        counters[holder] = counters.get(holder, Counters()) + row.counters
        costs[holder] = costs.get(holder, Cost()) + cost
    ptu: dict[tuple[str, str, str], list[CostLine]] = {}
    idle: dict[str, list[CostLine]] = {}
    for _, line in ptu_month_lines(repository, pricing, start):
        holder = (line.subscription_id, line.apim_service, line.service_tier)  # idle-spread lines: no usage key
        if line.subscription_id == UNALLOCATED_CAPACITY:
            idle.setdefault(line.deployment, []).append(line)
        elif holder in counters:
            ptu.setdefault(holder, []).append(line)
    result = [ChargebackLine(sub, counters[holder], costs[holder] + cost_of_lines(ptu.get(holder, ())),
                             apim_service=service, service_tier=tier)
              for holder in sorted(counters) for sub, service, tier in (holder,)]
    if subscriptions is None:
        result.extend(ChargebackLine(UNALLOCATED_CAPACITY, Counters(), cost_of_lines(idle[name]), name)
                      for name in sorted(idle))
    as_of = sum_costs(line.cost for line in result).price_as_of or pricing.as_of
    return Chargeback(start, pricing.currency, pricing.source, tuple(result), as_of, pricing.ptu.idle)
