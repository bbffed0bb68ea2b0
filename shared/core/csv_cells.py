"""CSV for spreadsheets, in any locale: every field quoted, text a spreadsheet would run as a formula defused.

The one home of CSV cells: the usage report, the chargeback (API and command line), FOCUS and the
reconciliation all write through :func:`csv_lines` / :func:`quoted_csv`.

* Every field (the header too) is quoted, lines end with ``\\r\\n`` (RFC 4180).
* A **text** cell — or any part of it after a ``;`` or ``,``, since a spreadsheet whose list
  separator is the other one splits the line there, quotes or not — that starts (after blanks) with
  ``=``, ``+``, ``-``, ``@`` (or their full-width forms), a tab or a carriage return gets a leading
  ``'``, so it is shown as text instead of run.
* Control characters (and line / paragraph separators) are removed from text cells.
* **Numbers stay numbers**: a cell that is exactly a plain decimal number (``-1.50``, ``42``) is
  written as it is in any column — it is a credit or a count, never a formula, and stays a number
  the spreadsheet can sum.  Columns an output declares **numeric** are never neutralised at all
  (FOCUS and reconciliation name theirs); anything else is text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache

# Control characters (category Cc) and line / paragraph separators (Zl, Zp): all of them, and all but tab and CR.
_REMOVED = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_REMOVED_BUT_TAB_CR = re.compile(r"[\x00-\x08\x0a-\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
# A cell or a ;/,-separated part starting (after blanks) like a formula; the ' goes before the blanks.
_FORMULA_PART = re.compile(r"(^|[;,])(?=[^\S\t\r]*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20])")
# Nothing to do for a text without any of these (most names): it is written as it is.
_ANY_RISK = re.compile(r"[=+\-@\uff1d\uff0b\uff0d\uff20\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
CHUNK = 64 * 1024  # characters per piece of a streamed CSV


def has_control(text: str) -> bool:
    return _REMOVED.search(text) is not None


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: formula starts of the cell and of each ``;``/``,``
    part neutralised with ``'``, control characters removed.

    Control characters other than tab and CR go first (``"\\x01=x"`` must not become a formula once
    cleaned); tab and CR count as formula starts, then go too.
    """
    if _ANY_RISK.search(text) is None:
        return text
    neutralised = _FORMULA_PART.sub(r"\1'", _REMOVED_BUT_TAB_CR.sub("", text))
    return _REMOVED.sub("", neutralised)


@lru_cache(maxsize=16_384)  # a report repeats few texts (periods, products, models, currency) on every row
def text_cell(text: str) -> str:
    """The cell of a text value in a column that is not declared numeric: a plain number as it is,
    anything else through :func:`safe_cell`."""
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    return safe_cell(text)


def cell(value: object, numeric: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    return text if numeric else text_cell(text)


def csv_lines(header: Sequence[str], records: Iterable[Mapping[str, object]],
              numeric: Collection[str] = ()) -> Iterator[str]:
    """The CSV text in pieces of about :data:`CHUNK` characters (the header first), written as the
    records come: memory holds one piece, whatever the number of records."""
    return csv_rows(header, ([cell(record.get(name), name in numeric) for name in header] for record in records))


def csv_rows(header: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """:func:`csv_lines` of rows whose cells are made already (by :func:`cell` / :func:`text_cell`, or
    known to be plain numbers): the fast path of an output that builds its cells column by column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def quoted_csv(header: Sequence[str], records: Iterable[Mapping[str, object]],
               numeric: Collection[str] = ()) -> str:
    """A header line and one line per record, every field quoted, ``\\r\\n`` line ends (RFC 4180)."""
    return "".join(csv_lines(header, records, numeric))
