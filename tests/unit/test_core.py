"""Pure rules, with plain data."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from shared.core.keys import decode_part, encode_part, partition_key, period_range, row_key
from shared.core.usage import (
    UNATTRIBUTED,
    UNKNOWN,
    Counters,
    Granularity,
    UsageKey,
    UsageRow,
    merge,
    normalize_key,
    touched_periods,
)
from shared.core.windows import Window, backfill_window, rollup_window, split


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_first_window_covers_lookback_floored_to_hour() -> None:
    window = rollup_window(t(25, 14, 37), None, timedelta(hours=2), timedelta(minutes=5))
    assert window == Window(t(25, 12), t(25, 14, 32))


def test_window_reaches_back_from_watermark() -> None:
    window = rollup_window(t(25, 14, 37), t(25, 14, 17), timedelta(hours=2), timedelta(minutes=5))
    assert window == Window(t(25, 12), t(25, 14, 32))
    # After a long outage the window starts from the old watermark, not from "now".
    window = rollup_window(t(25, 14, 37), t(23, 9, 10), timedelta(hours=2), timedelta(minutes=5))
    assert window is not None and window.start == t(23, 7)


def test_window_never_ends_before_ingestion_delay() -> None:
    window = rollup_window(t(25, 14, 1), t(25, 14, 0), timedelta(0), timedelta(minutes=5))
    # watermark in the future of now-delay: start clamps to the hour of now-delay
    assert window == Window(t(25, 13), t(25, 13, 56))


def test_split_gives_hour_aligned_contiguous_chunks() -> None:
    window = Window(t(20, 3), t(22, 5, 30))
    chunks = list(split(window, timedelta(hours=24)))
    assert chunks[0].start == window.start and chunks[-1].end == window.end
    assert all(a.end == b.start for a, b in pairwise(chunks))
    assert all(c.start.minute == 0 for c in chunks)
    assert [c.end - c.start for c in chunks[:-1]] == [timedelta(hours=24)] * 2


def test_backfill_window_widens_to_whole_hours() -> None:
    assert backfill_window(t(20, 3, 15), t(20, 5, 1)) == Window(t(20, 3), t(20, 6))


def test_null_and_empty_names_go_to_explicit_buckets() -> None:
    assert normalize_key(None, None, "", "  ") == UsageKey(UNATTRIBUTED, "", UNKNOWN, UNKNOWN)
    assert normalize_key(" sub ", "p", "m", "d") == UsageKey("sub", "p", "m", "d")


def test_merge_sums_hours_into_days_and_months_per_key() -> None:
    a, b = UsageKey("s1", "p", "m1", "d1"), UsageKey("s1", "p", "m2", "d2")
    rows = [
        UsageRow(Granularity.HOUR, t(1, 10), a, Counters(requests=1, total_tokens=10)),
        UsageRow(Granularity.HOUR, t(1, 11), a, Counters(requests=2, total_tokens=20)),
        UsageRow(Granularity.HOUR, t(1, 11), b, Counters(requests=4, total_tokens=40)),
        UsageRow(Granularity.HOUR, t(2, 0), a, Counters(requests=8, total_tokens=80)),
    ]
    days = merge(rows, Granularity.DAY)
    assert [(r.period_start, r.key, r.counters.requests) for r in days] == [
        (t(1, 0), a, 3), (t(1, 0), b, 4), (t(2, 0), a, 8)]
    months = merge(days, Granularity.MONTH)
    assert [(r.key, r.counters.total_tokens) for r in months] == [(a, 110), (b, 40)]
    assert touched_periods(rows, Granularity.DAY) == {("s1", t(1, 0)), ("s1", t(2, 0))}


HOSTILE = ["a/b", "a\\b", "a#b", "a?b", "tab\there", "nl\nx", "del\x7f", "pipe|x", "pct%41", "ünïcødé", "",
           "' or PartitionKey ne '", "x" * 1500]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_make_valid_keys(name: str) -> None:
    key = partition_key(name)
    assert not any(ch in key for ch in "/\\#?") and all(0x20 <= ord(ch) < 0x7F for ch in key)
    assert len(key.encode()) <= 255
    rk = row_key(Granularity.HOUR, t(1, 1), UsageKey(name, name, name, name))
    assert len(rk) <= 512 and not any(ch in rk for ch in "/\\#?")
    if len(name) < 60:
        assert decode_part(encode_part(name)) == name


def test_long_names_stay_unique() -> None:
    assert encode_part("x" * 1500) != encode_part("x" * 1499 + "y")


def test_row_keys_sort_by_period_and_ranges_select_exactly() -> None:
    key = UsageKey("s", "p", "m", "d")
    keys = [row_key(Granularity.HOUR, t(1, h), key) for h in range(24)]
    assert keys == sorted(keys)
    low, high = period_range(Granularity.HOUR, t(1, 5), t(1, 8))
    assert [k for k in keys if low <= k < high] == keys[5:8]
    assert row_key(Granularity.DAY, t(1, 0), key).startswith("d|2026-11-01|")
    assert row_key(Granularity.MONTH, t(1, 0), key).startswith("m|2026-11|")
