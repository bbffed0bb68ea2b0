"""Cost at read time: the price catalog, costs of usage-report rows, the monthly chargeback.

Stored usage rows stay token-only on purpose: cost is computed whenever a report is read, from
the price table in force for each row's date.  A wrong or late price is then fixed once, in the
price file or table, and every report — history included — is re-priced; nothing stored has to be
rewritten, and the rows remain a plain record of what the gateway logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from shared.core.months import next_month
from shared.core.pricing import (
    Cost,
    Price,
    PriceFileError,
    PriceTable,
    month_priced_whole,
    parse_price_file,
    row_cost,
    sum_costs,
    whole_month_cost,
    with_overrides,
)
from shared.core.usage import Counters, Granularity, UsageRow, is_chargeable
from shared.errors import ChargebackError, SettingError
from shared.ports import PriceOverrideRepository, UsageRepository

DEFAULT_PRICES = Path(__file__).resolve().parent.parent / "pricing" / "prices.default.json"
OVERRIDES_TTL_SECONDS = 60.0


class PriceCatalog:
    """The price file (parsed once per change of the file) with the table overrides on top."""

    def __init__(self, path: Path | None, overrides: PriceOverrideRepository | None = None) -> None:
        self.path = path or DEFAULT_PRICES
        self._custom = path is not None
        self._overrides = overrides
        self._cache: tuple[float, PriceTable] | None = None
        self._overrides_cache: tuple[float, list[tuple[Price, str]]] | None = None

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

    def current(self) -> PriceTable:
        table = self.file_table()
        if self._overrides is None:
            return table
        # The override table is read at most once a minute per process: every report needs prices,
        # and a table round trip per request was a third of a one-subscription report's latency.
        now = time.monotonic()
        if self._overrides_cache is None or now - self._overrides_cache[0] > OVERRIDES_TTL_SECONDS:
            self._overrides_cache = (now, list(self._overrides.list_prices()))
        overrides = self._overrides_cache[1]
        foreign = sorted({currency for _, currency in overrides if currency != table.currency})
        if foreign:
            raise ChargebackError(f"the prices table holds prices in {', '.join(foreign)} but the price file is in "
                                  f"{table.currency}; one currency only")
        return with_overrides(table, (price for price, _ in overrides), "prices table")

    def _error(self, message: str) -> ChargebackError:
        return SettingError("PRICES_PATH", message) if self._custom else ChargebackError(message)


SINGLE_PARTITION_READS = 20  # above this many subscriptions, month costs read days in one range query


def usage_costs(rows: Sequence[UsageRow], repository: UsageRepository, table: PriceTable) -> list[Cost]:
    """One cost per row.  Hour and day rows are priced on their date; a month row as a whole when
    the pricing rule allows it (:func:`~shared.core.pricing.month_priced_whole`), else as the sum
    of its day rows' costs, because a price changes in the middle of that month."""
    months = [row for row in rows if row.granularity is Granularity.MONTH and not month_priced_whole(row, table)]
    day_costs: dict[tuple[datetime, str, str, str, str], Cost] = {}
    if months:
        first, last = min(r.period_start for r in months), max(r.period_start for r in months)
        subscriptions = {r.subscription_id for r in months}
        if len(subscriptions) > SINGLE_PARTITION_READS:
            # Many subscriptions (a finance report): one RowKey-range query beats a read per partition
            # (1,000 single-partition reads measured 27 s for one month's CSV).
            days = [d for d in repository.read_all(Granularity.DAY, first, next_month(last))
                    if d.subscription_id in subscriptions]
        else:
            days = [d for subscription in sorted(subscriptions)
                    for d in repository.read(subscription, Granularity.DAY, first, next_month(last))]
        for day in days:
            slot = (Granularity.MONTH.period_start(day.period_start), *_key(day))
            day_costs[slot] = day_costs.get(slot, Cost()) + row_cost(day, table)
    costs = []
    for row in rows:
        if row.granularity is not Granularity.MONTH:
            costs.append(row_cost(row, table))
        elif (row.period_start, *_key(row)) in day_costs:
            costs.append(day_costs[(row.period_start, *_key(row))])
        else:
            costs.append(whole_month_cost(row, table))
    return costs


def _key(row: UsageRow) -> tuple[str, str, str, str]:
    return (row.key.subscription_id, row.key.product_id, row.key.model, row.key.deployment)


# -- monthly chargeback ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ChargebackLine:
    subscription_id: str
    counters: Counters
    cost: Cost


@dataclass(frozen=True)
class Chargeback:
    """A month's chargeback: one line per subscription, at the prices of ``price_source``."""

    month: datetime
    currency: str
    price_source: str
    lines: tuple[ChargebackLine, ...]

    @property
    def total_counters(self) -> Counters:
        return sum((line.counters for line in self.lines), Counters())

    @property
    def total_cost(self) -> Cost:
        return sum_costs(line.cost for line in self.lines)


def monthly_chargeback(repository: UsageRepository, prices: Callable[[], PriceTable], month: datetime,
                       subscriptions: Sequence[str] | None = None) -> Chargeback:
    """One line per subscription, from the month's day rows (each priced on its own date).

    ``prices``: the price table in force (asked once, before anything is read).  ``subscriptions``:
    only these (one single-partition read each); ``None`` = all of them.  The synthetic probe's
    traffic (``synthetic-probe``) is never charged, so it never has a line.
    """
    table = prices()
    counters: dict[str, Counters] = {}
    costs: dict[str, Cost] = {}
    end = next_month(month)
    if subscriptions is None:
        rows = repository.read_all(Granularity.DAY, month, end)
    else:
        rows = [row for sub in dict.fromkeys(subscriptions)
                for row in repository.read(sub, Granularity.DAY, month, end)]
    for row in rows:
        sub = row.subscription_id
        if not is_chargeable(sub):
            continue
        counters[sub] = counters.get(sub, Counters()) + row.counters
        costs[sub] = costs.get(sub, Cost()) + row_cost(row, table)
    lines = tuple(ChargebackLine(sub, counters[sub], costs[sub]) for sub in sorted(counters))
    return Chargeback(month, table.currency, table.source, lines)
