"""CSV for spreadsheets: every field quoted, text cells that a spreadsheet would run as a formula defused.

A text cell starting (after leading blanks) with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading ``'``, and control characters (and line / paragraph separators) are removed.
Numeric columns are written as plain numbers and never neutralised: ``-1.50`` stays a number.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_REMOVED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in _REMOVED_CATEGORIES for ch in text)


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: formula starts neutralised with ``'``, control characters removed."""
    neutralised = "'" + text if text.lstrip(" ").startswith(_FORMULA_STARTS) else text
    return "".join(ch for ch in neutralised if unicodedata.category(ch) not in _REMOVED_CATEGORIES)


def cell(value: object, numeric: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if numeric:
        return str(value)
    return safe_cell(str(value))


def quoted_csv(header: Sequence[str], records: Iterable[Mapping[str, object]],
               numeric: Collection[str] = ()) -> str:
    """A header line and one line per record, every field quoted, ``\\r\\n`` line ends (RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(header)
    for record in records:
        writer.writerow([cell(record.get(name), name in numeric) for name in header])
    return buffer.getvalue()
