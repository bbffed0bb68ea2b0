"""The usage report: parameters parsed and checked, rows read by key range, grouped, paged, totals added.

Reads are always key-range queries: one partition (subscription) at a time when the caller names
subscriptions or is scoped to some, the RowKey range of the period otherwise.  Product, model and
deployment filters and ``groupBy`` are applied to the rows read; cost comes per stored row (each at
the price of its own date) and is summed with the counters, so a grouped row's cost is exact.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.core.moments import parse_moment
from shared.core.pricing import Cost, money_text, sum_costs
from shared.core.usage import COUNTER_NAMES, Counters, Granularity, UsageRow, total
from shared.errors import InvalidRequestError
from shared.ports import UsageRepository

if TYPE_CHECKING:
    from shared.core.access import Scope

MAX_RANGE = timedelta(days=400)
# groupBy fields, in their output (and sort) order, and their JSON / CSV column names.
GROUP_FIELDS = ("subscription", "product", "model", "deployment")
FIELD_COLUMNS = {"subscription": "subscriptionId", "product": "productId", "model": "model",
                 "deployment": "deployment"}
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
        begin = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
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
        return (_iso(self.period_start), *self.values)


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


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def cost_json(cost: Cost, currency: str) -> dict[str, object]:
    return {"cost": money_text(cost.amount), "currency": currency, "unpricedTokens": cost.unpriced_tokens}


def grouped_row_json(row: ReportRow, group_by: Sequence[str], currency: str) -> dict[str, object]:
    return {
        "periodStart": _iso(row.period_start),
        **{FIELD_COLUMNS[name]: value for name, value in zip(group_by, row.values, strict=True)},
        **{_camel(name): value for name, value in row.counters.as_dict().items()},
        **cost_json(row.cost, currency),
    }


def totals_json(rows: Sequence[ReportRow], currency: str) -> dict[str, object]:
    counters = sum((row.counters for row in rows), Counters())
    cost = sum_costs(row.cost for row in rows)
    return {**{_camel(name): value for name, value in counters.as_dict().items()}, **cost_json(cost, currency),
            "unpricedModels": sorted(cost.unpriced_models)}


def grouped_report_json(query: UsageQuery, rows: Sequence[ReportRow], page: Sequence[ReportRow], currency: str,
                        page_size: int, next_token: str | None) -> dict[str, object]:
    """One page of rows; ``totals`` and ``rowCount`` always cover the whole result."""
    return {
        "from": _iso(query.start),
        "to": _iso(query.end),
        "granularity": query.granularity.value,
        "subscriptions": list(query.subscriptions),
        "filters": {"product": list(query.products), "model": list(query.models),
                    "deployment": list(query.deployments)},
        "groupBy": list(query.group_by),
        "rows": [grouped_row_json(row, query.group_by, currency) for row in page],
        "totals": totals_json(rows, currency),
        "rowCount": len(rows),
        "pageSize": page_size,
        "next": next_token,
    }


def grouped_csv(query: UsageQuery, rows: Sequence[ReportRow], currency: str) -> str:
    """Every row (CSV is never paged): period, the grouped key columns, counters, cost."""
    columns = ["periodStart", *(FIELD_COLUMNS[name] for name in query.group_by),
               *(_camel(name) for name in COUNTER_NAMES), "cost", "currency", "unpricedTokens"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(_csv_safe(grouped_row_json(row, query.group_by, currency)))
    return buffer.getvalue()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def row_json(row: UsageRow) -> dict[str, object]:
    return {
        "periodStart": row.period_start.isoformat().replace("+00:00", "Z"),
        "subscriptionId": row.key.subscription_id,
        "productId": row.key.product_id,
        "model": row.key.model,
        "deployment": row.key.deployment,
        **{_camel(name): value for name, value in row.counters.as_dict().items()},
    }


def report_json(query: UsageQuery, rows: list[UsageRow]) -> dict[str, object]:
    return {
        "from": query.start.isoformat().replace("+00:00", "Z"),
        "to": query.end.isoformat().replace("+00:00", "Z"),
        "granularity": query.granularity.value,
        "subscriptions": list(query.subscriptions),
        "rows": [row_json(row) for row in rows],
        "totals": {_camel(name): value for name, value in total(rows).as_dict().items()},
    }


CSV_COLUMNS = ("periodStart", "subscriptionId", "productId", "model", "deployment",
               *(_camel(name) for name in COUNTER_NAMES))


def report_csv(rows: list[UsageRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(_csv_safe(row_json(row)))
    return buffer.getvalue()


def _csv_safe(record: dict[str, object]) -> dict[str, object]:
    """Names a spreadsheet would run as a formula (=, +, -, @) are prefixed with a quote."""
    return {k: ("'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v) for k, v in record.items()}
