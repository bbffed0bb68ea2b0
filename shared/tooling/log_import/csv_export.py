"""CSV exports from Log Analytics: a header row of column names (``TimeGenerated [UTC]`` as the
portal writes it) and one row per line; logged bodies and messages make fields very large."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from shared.errors import ImportFormatError
from shared.tooling.log_import.records import Item, Malformed, column_header, record_to_row

CSV_FIELD_LIMIT = 1 << 30


def csv_items(text: str, table: str | None) -> Iterator[Item]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))  # logged bodies and messages are large
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_raw = next(reader, None)
    except csv.Error as exc:
        raise ImportFormatError(f"neither JSON nor readable CSV: {exc}") from exc
    if not header_raw:
        raise ImportFormatError("neither JSON nor a CSV export: the first line is empty")
    header = [column_header(h) for h in header_raw]
    lowered = {h.lower() for h in header}
    if "timegenerated" not in lowered:
        raise ImportFormatError(
            "neither JSON nor a Log Analytics CSV export (no TimeGenerated column in the first line)")
    if "type" not in lowered and table is None:
        raise ImportFormatError("the CSV export has no Type column; say which table with --table")
    return _csv_rows(reader, header, table)


def _csv_rows(reader: Any, header: list[str], table: str | None) -> Iterator[Item]:
    last = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Malformed(last + 1, f"unreadable CSV, rest of the file skipped: {exc}")
            return
        line, last = last + 1, reader.line_num
        if not cells or cells == [""]:
            continue
        if len(cells) != len(header):
            yield Malformed(line, f"{len(cells)} fields where the header has {len(header)}")
            continue
        yield record_to_row(dict(zip(header, cells, strict=True)), line, table)
