"""Cost at read time: the price catalog, costs of usage-report rows, the monthly chargeback.

Stored usage rows stay token-only on purpose: cost is computed whenever a report is read, from
the price table in force for each row's date.  A wrong or late price is then fixed once, in the
price file or table, and every report — history included — is re-priced; nothing stored has to be
rewritten, and the rows remain a plain record of what the gateway logged.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.core.pricing import (
    Cost,
    Price,
    PriceFileError,
    PriceTable,
    display,
    money_text,
    parse_price_file,
    row_cost,
    sum_costs,
    with_overrides,
)
from shared.core.usage import PROBE, Counters, Granularity, UsageRow
from shared.errors import ChargebackError, InvalidRequestError, SettingError
from shared.ports import PriceOverrideRepository, UsageRepository
from shared.services.report import _csv_safe, report_csv

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


def next_month(month: datetime) -> datetime:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


SINGLE_PARTITION_READS = 20  # above this many subscriptions, month costs read days in one range query


def usage_costs(rows: Sequence[UsageRow], repository: UsageRepository, table: PriceTable) -> list[Cost]:
    """One cost per row.  Hour and day rows are priced on their date; a month row is the sum of
    its day rows' costs, because a price may change in the middle of a month."""
    # Pricing is linear in tokens: a month whose price does not change inside it is priced as a
    # whole, exactly. Only months with a price change need their day rows.
    months = [row for row in rows if row.granularity is Granularity.MONTH and _price_changes_inside(row, table)]
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
            costs.append(_month_without_days(row, table))
    return costs


def _key(row: UsageRow) -> tuple[str, str, str, str]:
    return (row.key.subscription_id, row.key.product_id, row.key.model, row.key.deployment)


def _price_changes_inside(row: UsageRow, table: PriceTable) -> bool:
    start, end = row.period_start.date(), next_month(row.period_start).date()
    return any(start < changed < end for changed in table.change_dates(row.key.model))


def _month_without_days(row: UsageRow, table: PriceTable) -> Cost:
    """A month row with no stored day rows: priced only if no price change falls inside the month."""
    start = row.period_start
    if _price_changes_inside(row, table):
        tokens = row.counters.total_tokens
        return Cost(unpriced_tokens=tokens, unpriced_models=frozenset({row.key.model}) if tokens else frozenset())
    return row_cost(UsageRow(Granularity.DAY, start, row.key, row.counters), table)


def cost_fields(cost: Cost, currency: str) -> dict[str, object]:
    return {"cost": money_text(cost.amount), "currency": currency, "unpricedTokens": cost.unpriced_tokens}


def add_costs(report: dict[str, object], costs: Sequence[Cost], table: PriceTable) -> dict[str, object]:
    """``report_json`` output with cost, currency and unpriced tokens on every row and the totals."""
    rows = report["rows"]
    assert isinstance(rows, list) and len(rows) == len(costs)
    for row, cost in zip(rows, costs, strict=True):
        row.update(cost_fields(cost, table.currency))
    totals = report["totals"]
    assert isinstance(totals, dict)
    overall = sum_costs(costs)
    totals.update(cost_fields(overall, table.currency))
    totals["unpricedModels"] = sorted(overall.unpriced_models)
    return report


def costed_csv(rows: Sequence[UsageRow], costs: Sequence[Cost], table: PriceTable) -> str:
    """``report_csv`` plus cost, currency and unpricedTokens columns."""
    base = list(csv.DictReader(io.StringIO(report_csv(list(rows)))))
    buffer = io.StringIO()
    columns = [*_usage_columns(), "cost", "currency", "unpricedTokens"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record, cost in zip(base, costs, strict=True):
        writer.writerow({**record, **cost_fields(cost, table.currency)})
    return buffer.getvalue()


def _usage_columns() -> list[str]:
    return next(csv.reader(io.StringIO(report_csv([]))))


# -- monthly chargeback ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ChargebackLine:
    subscription_id: str
    counters: Counters
    cost: Cost


MONTH_PATTERN = r"^\s*(2\d{3})-(0[1-9]|1[0-2])\s*$"  # what parse_month accepts (documented in OpenAPI)


def parse_month(text: str | None, now: datetime) -> datetime:
    """``YYYY-MM`` -> the month's first instant (UTC); absent = the current month."""
    if text is None or not text.strip():
        return Granularity.MONTH.period_start(now)
    if not re.fullmatch(r"\d{4}-\d{2}", text.strip()):
        raise InvalidRequestError("month", f"expected YYYY-MM, got {text!r}")
    year, month = (int(part) for part in text.strip().split("-"))
    if not 1 <= month <= 12 or year < 2000:
        raise InvalidRequestError("month", f"not a valid month: {text!r}")
    return datetime(year, month, 1, tzinfo=UTC)


def chargeback(repository: UsageRepository, table: PriceTable, month: datetime,
               subscriptions: Sequence[str] | None = None) -> list[ChargebackLine]:
    """One line per subscription, from the month's day rows (each priced on its own date).

    ``subscriptions``: only these (one single-partition read each); ``None`` = all of them.  The
    synthetic probe's traffic (``synthetic-probe``) is never charged, so it never has a line.
    """
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
        if sub == PROBE:
            continue
        counters[sub] = counters.get(sub, Counters()) + row.counters
        costs[sub] = costs.get(sub, Cost()) + row_cost(row, table)
    return [ChargebackLine(sub, counters[sub], costs[sub]) for sub in sorted(counters)]


def _line_json(subscription_id: str, counters: Counters, cost: Cost, currency: str) -> dict[str, object]:
    return {
        "subscriptionId": subscription_id,
        "requests": counters.requests,
        "promptTokens": counters.prompt_tokens,
        "cachedTokens": counters.cached_tokens,
        "completionTokens": counters.completion_tokens,
        "totalTokens": counters.total_tokens,
        "errorRequests": counters.error_requests,
        "unmeteredRequests": counters.unmetered_requests,
        **cost_fields(cost, currency),
        "unpricedModels": sorted(cost.unpriced_models),
    }


def chargeback_json(month: datetime, lines: Sequence[ChargebackLine], table: PriceTable) -> dict[str, object]:
    overall_counters = sum((line.counters for line in lines), Counters())
    overall_cost = sum_costs(line.cost for line in lines)
    return {
        "month": month.strftime("%Y-%m"),
        "currency": table.currency,
        "priceSource": table.source,
        "subscriptions": [_line_json(ln.subscription_id, ln.counters, ln.cost, table.currency) for ln in lines],
        "totals": _line_json("*", overall_counters, overall_cost, table.currency),
    }


CHARGEBACK_COLUMNS = ("month", "subscriptionId", "requests", "promptTokens", "cachedTokens", "completionTokens",
                      "totalTokens", "errorRequests", "unmeteredRequests", "cost", "currency", "unpricedTokens",
                      "unpricedModels")


def chargeback_csv(month: datetime, lines: Sequence[ChargebackLine], table: PriceTable) -> str:
    """One line per subscription; costs exact (unrounded), unpriced models joined with ``;``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CHARGEBACK_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for line in lines:
        record = _line_json(line.subscription_id, line.counters, line.cost, table.currency)
        record["unpricedModels"] = ";".join(sorted(line.cost.unpriced_models))
        writer.writerow(_csv_safe({"month": month.strftime("%Y-%m"), **record}))
    return buffer.getvalue()


def chargeback_text(month: datetime, lines: Sequence[ChargebackLine], table: PriceTable) -> str:
    """A table for people: costs rounded to cents here, and only here."""
    header = (f"{'subscription':<24}{'requests':>10}{'prompt':>13}{'cached':>12}{'completion':>13}"
              f"{'total':>14}{'cost ' + table.currency:>14}{'unpriced':>12}")
    out = [f"chargeback {month:%Y-%m} (prices: {table.source})", header, "-" * len(header)]

    def line(name: str, c: Counters, cost: Cost) -> str:
        return (f"{name:<24}{c.requests:>10}{c.prompt_tokens:>13}{c.cached_tokens:>12}{c.completion_tokens:>13}"
                f"{c.total_tokens:>14}{display(cost.amount):>14}{cost.unpriced_tokens:>12}")

    out.extend(line(ln.subscription_id, ln.counters, ln.cost) for ln in lines)
    out.append("-" * len(header))
    out.append(line("TOTAL", sum((ln.counters for ln in lines), Counters()), sum_costs(ln.cost for ln in lines)))
    unpriced = sorted(set().union(*(ln.cost.unpriced_models for ln in lines))) if lines else []
    if unpriced:
        out.append(f"unpriced models (tokens not in cost): {', '.join(unpriced)}")
    return "\n".join(out)
