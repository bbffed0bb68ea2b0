"""Which files of a blob container are one month's Azure Cost Management export.

Cost Management writes an export run under ``<directory>/<export name>/<YYYYMMDD-YYYYMMDD>/``:
the folder is the date range the run covers (a month-to-date or monthly export of November 2026
writes ``20261101-20261130``). With file partitioning (the default of the current exports), each
run gets its own ``<run id>/`` folder holding ``part_*.csv[.gz]`` or ``part_*.parquet`` files and a
``manifest.json``; without it, each run is one file directly in the date-range folder.
(learn.microsoft.com/azure/cost-management-billing/costs/tutorial-improved-exports: "StorageContainer/
StorageDirectory/ExportName/[YYYYMMDD-YYYYMMDD]/[RunID]/".)

A daily month-to-date export runs every day and **every run is a complete snapshot** of the month
so far: reading all of them would count a day many times. So, per export folder (everything before
the date-range folder), one run is kept: of the date-range folders starting on the month's first
day, the one reaching furthest (a whole month beats a partial one-time export), and in it the run
whose files were written last. Files other than data files (``manifest.json``, ``_SUCCESS``, ...)
are never read. Several export folders (two exports, or one per scope) each contribute their run.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

DATE_RANGE = re.compile(r"^(\d{8})-(\d{8})$")
DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".snappy.parquet", ".gz.parquet")


@dataclass(frozen=True)
class ExportBlob:
    name: str  # the blob's full name in the container
    last_modified: datetime


@dataclass(frozen=True)
class _Placed:
    blob: ExportBlob
    export: str  # the export's folder: everything before the date-range folder
    range_end: date
    run: str  # the run folder (partitioned), or the file itself (one file per run)


def is_data_file(name: str) -> bool:
    return name.lower().endswith(DATA_SUFFIXES)


def _day(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _placed(blob: ExportBlob, first: date, last: date) -> _Placed | None:
    parts = blob.name.split("/")
    if not is_data_file(parts[-1]):
        return None
    for index, part in enumerate(parts[:-1]):
        found = DATE_RANGE.match(part)
        if not found:
            continue
        start, end = _day(found.group(1)), _day(found.group(2))
        if start != first or end is None or not first <= end <= last:
            continue
        rest = parts[index + 1:]
        return _Placed(blob, "/".join(parts[:index]), end, rest[0])
    return None


def month_export_blobs(blobs: Iterable[ExportBlob], month: date) -> list[ExportBlob]:
    """The data files of ``month``'s export runs (one run per export folder), sorted by name."""
    first = month.replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    by_export: dict[str, list[_Placed]] = {}
    for blob in blobs:
        placed = _placed(blob, first, last)
        if placed is not None:
            by_export.setdefault(placed.export, []).append(placed)
    chosen: list[ExportBlob] = []
    for files in by_export.values():
        widest = max(f.range_end for f in files)
        runs: dict[str, list[_Placed]] = {}
        for f in files:
            if f.range_end == widest:
                runs.setdefault(f.run, []).append(f)
        # the run written last; its name breaks a tie (run ids are not ordered, but the choice is stable)
        latest = max(runs, key=lambda run: (max(f.blob.last_modified for f in runs[run]), run))
        chosen.extend(f.blob for f in runs[latest])
    return sorted(chosen, key=lambda blob: blob.name)
