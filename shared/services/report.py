"""The usage report's steps: parameters parsed and checked, rows read by key range, grouped, paged.

Reads are always key-range queries: one partition (subscription) at a time when the caller names
subscriptions or is scoped to some, the RowKey range of the period otherwise.  Product, model and
deployment filters and ``groupBy`` are applied to the rows read; cost comes per stored row (each at
the price of its own date) and is summed with the counters, so a grouped row's cost is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.core.moments import iso, parse_moment
from shared.core.months import month_start
from shared.core.pricing import Cost
from shared.core.usage import Counters, Granularity, UsageRow
from shared.errors import InvalidRequestError
from shared.ports import UsageRepository

if TYPE_CHECKING:
    from shared.core.access import Scope

MAX_RANGE = timedelta(days=400)
GROUP_FIELDS = ("subscription", "product", "model", "deployment")  # groupBy fields, in output (and sort) order
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 5000


@dataclass(frozen=True)
class UsageQuery:
    subscriptions: tuple[str, ...]
    start: datetime
    end: datetime  # exclusive
    granularity: Granularity
    products: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()
    group_by: tuple[str, ...] = field(default=GROUP_FIELDS)

    def matches(self, row: UsageRow) -> bool:
        return ((not self.products or row.key.product_id in self.products)
                and (not self.models or row.key.model in self.models)
                and (not self.deployments or row.key.deployment in self.deployments))



def _names(values: Sequence[str] | None) -> tuple[str, ...]:
    """Repeated and/or comma-separated values, trimmed, duplicates dropped, order kept."""
    parts = (part.strip() for value in values or () for part in value.split(","))
    return tuple(dict.fromkeys(part for part in parts if part))


def parse_group_by(values: Sequence[str] | None) -> tuple[str, ...]:
    """``groupBy`` values (repeated or comma-separated) in canonical order; absent = every key field."""
    names = [name.lower() for name in _names(values)]
    for name in names:
        if name not in GROUP_FIELDS:
            raise InvalidRequestError("groupBy", f"must be any of {', '.join(GROUP_FIELDS)}, got {name!r}")
    return tuple(f for f in GROUP_FIELDS if f in names) if names else GROUP_FIELDS


def parse_page_size(value: int | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidRequestError("pageSize", f"must be between 1 and {MAX_PAGE_SIZE}, got {value}")
    return value


def parse_usage_query(subscriptions: Sequence[str] | None, start: str | None, end: str | None,
                      granularity: str | None, now: datetime, *, products: Sequence[str] | None = None,
                      models: Sequence[str] | None = None, deployments: Sequence[str] | None = None,
                      group_by: Sequence[str] | None = None) -> UsageQuery:
    """``from`` is inclusive; a date-only ``to`` includes that whole day, a datetime ``to`` is exclusive.

    Defaults: month to date, daily rows, every key field kept.
    """
    try:
        grain = Granularity((granularity or "day").strip().lower())
    except ValueError:
        raise InvalidRequestError("granularity", f"must be hour, day or month, got {granularity!r}") from None
    if start:
        begin, _ = parse_moment("from", start)
    else:
        begin = month_start(now)
    if end:
        finish, date_only = parse_moment("to", end)
        finish = finish + timedelta(days=1) if date_only else finish
    else:
        finish = now.astimezone(UTC)
    if begin >= finish:
        raise InvalidRequestError("from", f"must be before 'to' ({begin.isoformat()} >= {finish.isoformat()})")
    if finish - begin > MAX_RANGE:
        raise InvalidRequestError("to", f"range longer than {MAX_RANGE.days} days; ask for less")
    return UsageQuery(_names(subscriptions), grain.period_start(begin), finish, grain, _names(products),
                      _names(models), _names(deployments), parse_group_by(group_by))


def read_usage(repository: UsageRepository, query: UsageQuery, scope: Scope | None = None) -> list[UsageRow]:
    """The stored rows of the query, filtered, in report order.

    With subscriptions named, or a caller scoped to some, each is one single-partition RowKey-range
    read; only an unrestricted caller asking for every subscription reads the period's RowKey range
    across partitions.  A named subscription outside the caller's scope is a 403.
    """
    if scope is None:
        subscriptions: tuple[str, ...] | None = query.subscriptions or None
    else:
        subscriptions = scope.subscriptions_for(query.subscriptions)
    if subscriptions is None:
        rows = repository.read_all(query.granularity, query.start, query.end)
    else:
        rows = [row for sub in subscriptions for row in repository.read(sub, query.granularity, query.start,
                                                                         query.end)]
    return sorted((row for row in rows if query.matches(row)),
                  key=lambda r: (r.period_start, r.key.subscription_id, r.key.product_id, r.key.model,
                                 r.key.deployment))


# -- grouped, costed, paged rows ------------------------------------------------------------------
@dataclass(frozen=True)
class ReportRow:
    """One output row: a period and the values of the ``groupBy`` fields, summed over the others."""

    period_start: datetime
    values: tuple[str, ...]  # one per field of the query's group_by
    counters: Counters
    cost: Cost

    def sort_key(self) -> tuple[str, ...]:
        return (iso(self.period_start), *self.values)


def _field_value(row: UsageRow, name: str) -> str:
    key = row.key
    return {"subscription": key.subscription_id, "product": key.product_id, "model": key.model,
            "deployment": key.deployment}[name]


def group_rows(rows: Sequence[UsageRow], costs: Sequence[Cost], group_by: Sequence[str]) -> list[ReportRow]:
    """Rows (and their costs) summed per period x ``group_by`` values, sorted by that key."""
    counters: dict[tuple[datetime, tuple[str, ...]], Counters] = {}
    amounts: dict[tuple[datetime, tuple[str, ...]], Cost] = {}
    for row, cost in zip(rows, costs, strict=True):
        slot = (row.period_start, tuple(_field_value(row, name) for name in group_by))
        counters[slot] = counters.get(slot, Counters()) + row.counters
        amounts[slot] = amounts.get(slot, Cost()) + cost
    grouped = [ReportRow(start, values, counters[(start, values)], amounts[(start, values)])
               for start, values in counters]
    return sorted(grouped, key=ReportRow.sort_key)


def page_after(rows: Sequence[ReportRow], after: Sequence[str] | None, size: int) -> tuple[list[ReportRow], bool]:
    """The ``size`` rows following the sort key ``after`` (keyset paging) and whether more follow."""
    start = 0
    if after is not None:
        cursor = tuple(after)
        start = next((i for i, row in enumerate(rows) if row.sort_key() > cursor), len(rows))
    page = list(rows[start:start + size])
    return page, start + size < len(rows)
