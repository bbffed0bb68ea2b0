"""ISO dates and datetimes from request parameters, the one way every endpoint reads them."""

from __future__ import annotations

from datetime import UTC, date, datetime

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
