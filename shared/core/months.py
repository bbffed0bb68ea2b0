"""Calendar months in UTC: where one starts, where the next one starts, and ``YYYY-MM`` as asked for.

Monthly rows, quotas, chargeback and summaries all span ``[month_start, next_month)``; this is the
one place that arithmetic is written.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from shared.errors import InvalidRequestError

MONTH_PATTERN = r"^\s*(2\d{3})-(0[1-9]|1[0-2])\s*$"  # what parse_month accepts (documented in OpenAPI)


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the month holding ``moment``."""
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(month: datetime) -> datetime:
    """The first day of the following month (time of day and zone kept): the exclusive end of ``month``."""
    # Day 28 exists in every month, and 4 days on is always inside the next one.
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def parse_month(text: str | None, now: datetime) -> datetime:
    """``YYYY-MM`` -> the month's first instant (UTC); absent or blank = the month holding ``now``."""
    if text is None or not text.strip():
        return month_start(now)
    if not re.fullmatch(r"\d{4}-\d{2}", text.strip()):
        raise InvalidRequestError("month", f"expected YYYY-MM, got {text!r}")
    year, month = (int(part) for part in text.strip().split("-"))
    if not 1 <= month <= 12 or year < 2000:
        raise InvalidRequestError("month", f"not a valid month: {text!r}")
    return datetime(year, month, 1, tzinfo=UTC)
