"""The usage report: parameters parsed and checked, rows read by key range, totals added."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from shared.core.usage import COUNTER_NAMES, Granularity, UsageRow, total
from shared.errors import InvalidRequestError
from shared.ports import UsageRepository

MAX_RANGE = timedelta(days=400)


@dataclass(frozen=True)
class UsageQuery:
    subscriptions: tuple[str, ...]
    start: datetime
    end: datetime  # exclusive
    granularity: Granularity


def _parse_moment(parameter: str, text: str) -> tuple[datetime, bool]:
    """(moment, is_date_only); naive datetimes are taken as UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC), True
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(parameter, f"expected an ISO date (YYYY-MM-DD) or datetime, got {text!r}") from None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)), False


def parse_usage_query(subscriptions: Sequence[str] | None, start: str | None, end: str | None,
                      granularity: str | None, now: datetime) -> UsageQuery:
    """``from`` is inclusive; a date-only ``to`` includes that whole day, a datetime ``to`` is exclusive.

    Defaults: month to date, daily rows.
    """
    try:
        grain = Granularity((granularity or "day").strip().lower())
    except ValueError:
        raise InvalidRequestError("granularity", f"must be hour, day or month, got {granularity!r}") from None
    if start:
        begin, _ = _parse_moment("from", start)
    else:
        begin = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if end:
        finish, date_only = _parse_moment("to", end)
        finish = finish + timedelta(days=1) if date_only else finish
    else:
        finish = now.astimezone(UTC)
    if begin >= finish:
        raise InvalidRequestError("from", f"must be before 'to' ({begin.isoformat()} >= {finish.isoformat()})")
    if finish - begin > MAX_RANGE:
        raise InvalidRequestError("to", f"range longer than {MAX_RANGE.days} days; ask for less")
    cleaned = tuple(dict.fromkeys(s.strip() for s in subscriptions or () if s.strip()))
    return UsageQuery(cleaned, grain.period_start(begin), finish, grain)


def read_usage(repository: UsageRepository, query: UsageQuery) -> list[UsageRow]:
    if query.subscriptions:
        rows = [row for sub in query.subscriptions
                for row in repository.read(sub, query.granularity, query.start, query.end)]
    else:
        rows = repository.read_all(query.granularity, query.start, query.end)
    return sorted(rows, key=lambda r: (r.period_start, r.key.subscription_id, r.key.product_id, r.key.model,
                                       r.key.deployment))


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
