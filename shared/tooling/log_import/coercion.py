"""Values of an imported record as the Python value of their column's Kusto type.

Exports carry every value as text (CSV) or as JSON scalars: numbers in range, booleans spelled
any common way, datetimes in ISO 8601 or the portal's display layouts (naive UTC), and
``dynamic`` values kept as JSON text.  A value that does not fit raises ValueError saying why.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)


def coerce(kql_type: str, value: Any) -> Any:
    """``value`` as the Python value of a Kusto column type; ValueError names what was wrong."""
    if value is None:
        return None
    if kql_type in ("string", "guid"):
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
    if kql_type in ("int", "long"):
        return _integer(value, INT_RANGE if kql_type == "int" else LONG_RANGE, kql_type)
    if kql_type == "real":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"cannot convert {value!r} to real")
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"cannot convert {value!r} to real") from None
    if kql_type == "bool":
        return _boolean(value)
    if kql_type == "datetime":
        if isinstance(value, datetime):
            return _naive_utc(value)
        if isinstance(value, str):
            return parse_datetime(value)
        raise ValueError(f"cannot convert {value!r} to datetime")
    if kql_type == "dynamic":
        if isinstance(value, str):
            try:
                json.loads(value)
            except json.JSONDecodeError:
                return json.dumps(value, ensure_ascii=False)  # a plain string: a JSON string value
            return value
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    raise ValueError(f"columns of type {kql_type} cannot be imported")


def _integer(value: Any, bounds: tuple[int, int], kql_type: str) -> int:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            try:
                as_float = float(value)
            except ValueError:
                as_float = float("nan")
            number = int(as_float) if as_float.is_integer() else None
    if number is None:
        raise ValueError(f"cannot convert {value!r} to {kql_type}")
    if not bounds[0] <= number <= bounds[1]:
        raise ValueError(f"{number} is out of range for {kql_type}")
    return number


_TRUE = {"true": True, "false": False, "1": True, "0": False}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE:
        return _TRUE[value.lower()]
    raise ValueError(f"cannot convert {value!r} to bool")


# Portal CSV exports write datetimes as the portal displays them: en-US or year-first layouts.
_US_TIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}),?\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*([AaPp][Mm])")
_YEAR_FIRST_TIME = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2}),?\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?")


def _naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def parse_datetime(text: str) -> datetime:
    """ISO 8601 (Z or offset -> UTC; no offset = UTC), or the portal's en-US / year-first display."""
    text = text.strip()
    try:
        return _naive_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        if match := _US_TIME.fullmatch(text):
            month, day, year, hour, minute, second, fraction, half = match.groups()
            hour_24 = int(hour) % 12 + (12 if half.upper() == "PM" else 0)
            if not 1 <= int(hour) <= 12:
                raise ValueError
            return datetime(int(year), int(month), int(day), hour_24, int(minute), int(second),
                            _microseconds(fraction))
        if match := _YEAR_FIRST_TIME.fullmatch(text):
            year, month, day, hour, minute, second, fraction = match.groups()
            return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                            _microseconds(fraction))
    except ValueError:
        pass
    raise ValueError(f"cannot convert {text!r} to datetime")


def _microseconds(fraction: str | None) -> int:
    return int((fraction or "").ljust(6, "0")[:6])
