"""The scheduled run reads the next subscriptions while the previous ones' rows are being written
(``RollupService.write_batch`` subscriptions per write, :mod:`shared.services.write_behind`), and
still moves the watermark only once every write of the chunk succeeded; the writer lease is
confirmed before each write.  On in-memory fakes with timed reads and writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.usage import Counters, Granularity, UsageKey, UsageRow
from shared.errors import LeaseLostError, StorageError
from shared.services.rollup import WATERMARK_NAME, RollupService
from shared.services.write_behind import WriteBehind
from tests.fakes import FakeClock, FakeLogSource, InMemoryUsageRepository, InMemoryWatermarkRepository
from tests.unit.test_rollup_service import counters, record

NOW = datetime(2026, 11, 20, 2, 10, tzinfo=UTC)  # window [2026-11-19 23:00, 2026-11-20 02:00), one chunk
HOURS = [datetime(2026, 11, 19, 23, tzinfo=UTC), datetime(2026, 11, 20, 1, tzinfo=UTC)]
TEAMS = [f"team-{n}" for n in range(6)]
# each team: 1 + n requests, 100 prompt and 10 completion tokens per request, in both hours
RECORDS = [record(hour, UsageKey(team, "p", "gpt-4o", "chat"), 1 + n, 100 * (1 + n), 10 * (1 + n))
           for n, team in enumerate(TEAMS) for hour in HOURS]


class TimedRepository(InMemoryUsageRepository):
    """Reads and writes that take time (as a storage round trip does), with when each ran; the
    in-memory table itself is touched under a lock (reads and writes run on different threads)."""

    def __init__(self, read_seconds: float = 0.03, write_seconds: float = 0.08, fail_write: int | None = None) -> None:
        super().__init__()
        self.read_seconds, self.write_seconds, self.fail_write = read_seconds, write_seconds, fail_write
        self.reads: list[tuple[float, float]] = []
        self.writes: list[tuple[float, float]] = []
        self.written_batches: list[list[UsageRow]] = []
        self._lock = threading.Lock()

    def read(self, subscription_id: str, granularity: Granularity, start: datetime, end: datetime) -> list[UsageRow]:
        began = time.monotonic()
        time.sleep(self.read_seconds)
        with self._lock:
            rows = super().read(subscription_id, granularity, start, end)
            self.reads.append((began, time.monotonic()))
        return rows

    def upsert(self, rows: Iterable[UsageRow]) -> int:
        batch = list(rows)
        began = time.monotonic()
        time.sleep(self.write_seconds)
        with self._lock:
            if self.fail_write is not None and len(self.writes) + 1 == self.fail_write:
                self.writes.append((began, time.monotonic()))
                raise StorageError("Table Storage operation failed: the service is unavailable (test)")
            written = super().upsert(batch)
            self.writes.append((began, time.monotonic()))
            self.written_batches.append(batch)
        return written


def service(usage: InMemoryUsageRepository, marks: InMemoryWatermarkRepository, **options: object) -> RollupService:
    return RollupService(FakeLogSource(RECORDS), usage, marks, lookback=timedelta(hours=3),
                         ingestion_delay=timedelta(minutes=10), max_chunk=timedelta(hours=6),
                         clock=FakeClock(NOW), **options)  # type: ignore[arg-type]


def expected_rows(granularity: Granularity) -> dict[tuple[datetime, str], Counters]:
    """Written out from RECORDS' rule: per team and hour 1 + n requests x (100 prompt, 10 completion)."""
    per_hour = {team: counters(1 + n, 100 * (1 + n), 10 * (1 + n)) for n, team in enumerate(TEAMS)}
    if granularity is Granularity.HOUR:
        return {(hour, team): c for team, c in per_hour.items() for hour in HOURS}
    if granularity is Granularity.DAY:
        return {(hour.replace(hour=0), team): c for team, c in per_hour.items() for hour in HOURS}
    return {(datetime(2026, 11, 1, tzinfo=UTC), team): c + c for team, c in per_hour.items()}


def stored(usage: InMemoryUsageRepository, granularity: Granularity) -> dict[tuple[datetime, str], Counters]:
    return {(row.period_start, row.subscription_id): row.counters
            for (g, _, _), row in usage.rows.items() if g is granularity}


def test_reads_of_the_next_batch_overlap_the_writes_of_the_one_before() -> None:
    usage, marks = TimedRepository(), InMemoryWatermarkRepository()
    result = service(usage, marks, write_batch=2).run()

    overlapping = [(read, write) for read in usage.reads for write in usage.writes
                   if read[0] < write[1] and write[0] < read[1]]
    assert overlapping, f"no read ran while a write was in flight: reads {usage.reads}, writes {usage.writes}"
    # 3 batches of 2 teams: hours+days, then months, of each (the months once that batch's days are stored)
    assert len(usage.writes) == 6
    assert [sorted({row.subscription_id for row in batch}) for batch in usage.written_batches] == [
        ["team-0", "team-1"], ["team-2", "team-3"], ["team-0", "team-1"], ["team-4", "team-5"],
        ["team-2", "team-3"], ["team-4", "team-5"]]
    for granularity in Granularity:
        assert stored(usage, granularity) == expected_rows(granularity), granularity
    assert result.watermark == marks.get(WATERMARK_NAME).value == NOW.replace(minute=0)
    assert (result.hourly_rows_written, result.derived_rows_written) == (12, 12 + 6)


def test_the_same_rows_whatever_the_batch_size() -> None:
    one_write, batched = InMemoryUsageRepository(), TimedRepository(read_seconds=0, write_seconds=0)
    service(one_write, InMemoryWatermarkRepository(), write_batch=1000).run()
    service(batched, InMemoryWatermarkRepository(), write_batch=1).run()
    assert one_write.rows == batched.rows
    assert stored(batched, Granularity.MONTH) == expected_rows(Granularity.MONTH)


@pytest.mark.parametrize("failing", [1, 2, 3, 6])
def test_a_failed_write_leaves_the_watermark_unmoved_and_a_rerun_converges(failing: int) -> None:
    usage, marks = TimedRepository(read_seconds=0.01, write_seconds=0.02, fail_write=failing), \
        InMemoryWatermarkRepository()
    with pytest.raises(StorageError, match="unavailable"):
        service(usage, marks, write_batch=2).run()
    assert marks.get(WATERMARK_NAME).value is None
    # nothing derived from the failed write: a month write follows its batch's stored days only
    failed_at = usage.writes[failing - 1][1]
    assert all(began < failed_at for began, _ in usage.writes), "a write started after one had failed"

    usage.fail_write = None
    result = service(usage, marks, write_batch=2).run()
    for granularity in Granularity:
        assert stored(usage, granularity) == expected_rows(granularity), granularity
    assert result.watermark == marks.get(WATERMARK_NAME).value == NOW.replace(minute=0)


class CountingLease:
    """A writer lease lost after ``keep`` confirmations; which thread confirmed, before which write."""

    def __init__(self, usage: TimedRepository, keep: int) -> None:
        self.usage, self.keep, self.confirmed = usage, keep, 0
        self.writes_before_confirm: list[int] = []

    def acquire(self) -> None: ...

    def release(self) -> None: ...

    def confirm(self) -> None:
        self.writes_before_confirm.append(len(self.usage.writes))
        self.confirmed += 1
        if self.confirmed > self.keep:
            raise LeaseLostError("the writer lease expired and another run took it: this run stops before writing")


def test_the_lease_is_confirmed_before_every_write_and_a_lost_lease_stops_the_writes() -> None:
    usage, marks = TimedRepository(read_seconds=0.01, write_seconds=0.02), InMemoryWatermarkRepository()
    lease = CountingLease(usage, keep=3)  # the query's confirmation, then two writes
    with pytest.raises(LeaseLostError):
        service(usage, marks, write_batch=2, lease=lease).run()
    assert len(usage.writes) == 2 and lease.writes_before_confirm[1:3] == [0, 1]
    assert marks.get(WATERMARK_NAME).value is None


def test_write_behind_bounds_the_writes_waiting() -> None:
    release, started = threading.Event(), threading.Event()
    order: list[int] = []

    def write(rows: Sequence[int]) -> int:
        started.set()
        release.wait(5)
        order.extend(rows)
        return len(rows)

    with WriteBehind[int](write, depth=2) as writes:
        writes.submit([1])
        assert started.wait(5)
        writes.submit([2])
        waiting = threading.Thread(target=writes.submit, args=([3],))
        waiting.start()
        waiting.join(0.2)
        assert waiting.is_alive(), "a third write was handed over while two were pending"
        release.set()
        waiting.join(5)
        assert writes.drain() == 3
    assert order == [1, 2, 3]
