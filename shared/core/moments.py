"""Moments in time as the API reads and writes them: ISO dates and datetimes from request
parameters, and the one ISO text (``...Z`` for UTC) every JSON body uses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import overload

from shared.errors import InvalidRequestError


def parse_moment(parameter: str, text: str) -> tuple[datetime, bool]:
    """(moment in UTC, is_date_only); naive datetimes are taken as UTC.

    A bad value is a 400 naming ``parameter``.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC), True
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(parameter, f"expected an ISO date (YYYY-MM-DD) or datetime, got {text!r}") from None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)), False


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
