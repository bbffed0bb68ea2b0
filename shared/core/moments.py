"""Moments in time as the API reads and writes them: ISO dates and datetimes from request
parameters, the ``from``/``to`` range of a report, and the one ISO text (``...Z`` for UTC) every
JSON body uses.

A moment must lie between :data:`EARLIEST` and :data:`LATEST`: far enough inside Python's calendar
that a day, a month or a zone offset added to it never overflows (``to=9999-12-31`` would, once
its whole day is included), and a report range is at most :data:`MAX_RANGE_DAYS` long.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import overload

from shared.errors import InvalidRequestError

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive
MAX_RANGE_DAYS = 400  # the longest from/to range of a usage report (and the dashboard's)
_BOUNDS = f"between {EARLIEST.date().isoformat()} and {(LATEST - timedelta(days=1)).date().isoformat()}"


def parse_moment(parameter: str, text: str) -> tuple[datetime, bool]:
    """(moment in UTC, is_date_only); naive datetimes are taken as UTC.

    A bad value, or one outside ``[EARLIEST, LATEST)``, is a 400 naming ``parameter``.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            moment, date_only = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC), True
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
            date_only = False
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the first representable UTC instant
        raise InvalidRequestError(parameter, f"must be {_BOUNDS}, got {text!r}") from None
    except ValueError:
        raise InvalidRequestError(parameter, f"expected an ISO date (YYYY-MM-DD) or datetime, got {text!r}") from None
    if not EARLIEST <= moment < LATEST:
        raise InvalidRequestError(parameter, f"must be {_BOUNDS}, got {text!r}")
    return moment, date_only


def parse_range(start: str | None, end: str | None, now: datetime, default_start: Callable[[datetime], datetime],
                max_days: int = MAX_RANGE_DAYS) -> tuple[datetime, datetime]:
    """``from`` inclusive, ``to`` exclusive for a datetime and including that whole day for a date.

    Defaults: ``to`` = ``now``, ``from`` = ``default_start(to)``.  ``from`` must be before ``to``
    and the range at most ``max_days`` long (400s naming ``from`` / ``to``).
    """
    finish = now.astimezone(UTC)
    if end:
        finish, date_only = parse_moment("to", end)
        finish = finish + timedelta(days=1) if date_only else finish
    begin = parse_moment("from", start)[0] if start else default_start(finish)
    if begin >= finish:
        raise InvalidRequestError("from", f"must be before 'to' ({iso(begin)} >= {iso(finish)})")
    if finish - begin > timedelta(days=max_days):
        raise InvalidRequestError("to", f"range longer than {max_days} days; ask for less")
    return begin, finish


@overload
def iso(moment: datetime) -> str: ...


@overload
def iso(moment: None) -> None: ...


@overload
def iso(moment: datetime | None) -> str | None: ...


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with ``Z`` for UTC (``2026-11-01T00:00:00Z``); ``None`` stays ``None`` (JSON ``null``).

    An aware moment is shown in UTC; a naive one is taken as UTC already.
    """
    if moment is None:
        return None
    return (moment.astimezone(UTC) if moment.tzinfo else moment).isoformat().replace("+00:00", "Z")
