"""Which time range a rollup run re-aggregates, and how a long range is split into queries."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    """A half-open UTC range ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.start >= self.end:
            raise ValueError(f"empty window: {self.start.isoformat()} >= {self.end.isoformat()}")


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment.astimezone(UTC) else floored + HOUR


def rollup_window(now: datetime, watermark: datetime | None, lookback: timedelta,
                  ingestion_delay: timedelta) -> Window | None:
    """``[watermark - lookback, now - delay)``, its start floored to the hour.

    The start is hour-aligned because every hourly bucket the run writes must be recomputed from
    *all* of its rows: a bucket computed from half an hour would overwrite a complete one.  The
    end is not aligned: the last, partial hour is written now and completed by the next run, whose
    window starts at least ``lookback`` before this end.  ``None`` when there is nothing to do yet.
    """
    end = now.astimezone(UTC) - ingestion_delay
    anchor = end if watermark is None else min(watermark.astimezone(UTC), end)
    start = floor_hour(anchor - lookback)
    return Window(start, end) if start < end else None


def backfill_window(start: datetime, end: datetime) -> Window:
    """An explicit ``--from/--to`` range, widened to whole hours so no bucket is written half-full."""
    return Window(floor_hour(start), ceil_hour(end))


def split(window: Window, max_chunk: timedelta) -> Iterator[Window]:
    """Consecutive hour-aligned chunks of at most ``max_chunk`` covering ``window`` exactly.

    Chunk borders fall on whole hours so that each hourly bucket is computed by one query.
    """
    step = max(HOUR, floor_hour(datetime(2000, 1, 1, tzinfo=UTC) + max_chunk) - datetime(2000, 1, 1, tzinfo=UTC))
    cursor = window.start
    while cursor < window.end:
        stop = min(floor_hour(cursor) + step, window.end)
        yield Window(cursor, stop)
        cursor = stop
