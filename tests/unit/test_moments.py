"""Request moments: out-of-range datetimes are a 400 naming the parameter (never an overflow), and the
report range rules (from inclusive, a date-only to includes its day, at most MAX_RANGE_DAYS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.core.moments import EARLIEST, LATEST, MAX_RANGE_DAYS, parse_moment, parse_range
from shared.errors import InvalidRequestError

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.mark.parametrize("text", ["9999-12-31", "9999-12-31T23:59:59", "0001-01-01", "0001-01-01T00:00+14:00",
                                  "1969-12-31T23:59:59Z", "9999-01-01"])
def test_out_of_range_moments_are_400_naming_the_parameter(text: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_moment("to", text)
    assert caught.value.parameter == "to" and "between 1970-01-01 and 9998-12-31" in str(caught.value)


def test_bounds_themselves() -> None:
    assert parse_moment("from", "1970-01-01") == (EARLIEST, True)
    assert parse_moment("from", "9998-12-31T23:59:59Z")[0] == LATEST - timedelta(seconds=1)
    assert parse_moment("from", "2026-11-01T02:00+02:00") == (datetime(2026, 11, 1, tzinfo=UTC), False)


def test_range_rules() -> None:
    start, end = parse_range("2026-11-01", "2026-11-03", NOW, lambda _: NOW)
    assert (start, end) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC))
    assert parse_range(None, None, NOW, lambda end: end - timedelta(days=1)) == (NOW - timedelta(days=1), NOW)
    with pytest.raises(InvalidRequestError, match="from: must be before"):
        parse_range("2026-11-04", "2026-11-03", NOW, lambda _: NOW)
    longest = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=MAX_RANGE_DAYS)).date().isoformat()
    assert parse_range("2026-01-01", longest + "T00:00:00Z", NOW, lambda _: NOW)[1].date().isoformat() == longest
    with pytest.raises(InvalidRequestError, match=f"to: range longer than {MAX_RANGE_DAYS} days"):
        parse_range("2026-01-01", longest, NOW, lambda _: NOW)  # a date-only to adds its whole day
