"""Month rows summed from the period index when many subscriptions' months are recomputed (a
scheduled run: ``month_parts``, read before the chunk is written, the chunk's days kept apart, the
months then written with their days; a backfill: ``month_sums``, once its days are stored), a read
per subscription otherwise: both give the same rows (several keys, APIM services, a priority tier;
days of other months and subscriptions not asked for left out; a rerun; a stored day row of a key
the chunk no longer returns), the threshold picks the path, an incomplete index falls back to the
single reads, and a failed month write leaves the watermark where it was.  The index's own summing
(``MonthTotals``) is checked against ``usage_row`` + ``merge`` on stored entities.  On in-memory
fakes; expected numbers from the traffic's rule, written out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from shared.adapters.entity_values import plain
from shared.adapters.index_month_sums import MonthTotals
from shared.adapters.tables import _PROPERTY, usage_entity, usage_row
from shared.adapters.usage_index import index_entity
from shared.core.keys import storable_name
from shared.core.usage import PRIORITY_TIER, Counters, Granularity, UsageKey, UsageRow, merge
from shared.errors import StorageError
from shared.ports import MonthParts
from shared.services.rollup import WATERMARK_NAME, RollupService
from tests.fakes import FakeClock, FakeLogSource, InMemoryUsageRepository, InMemoryWatermarkRepository
from tests.unit.test_rollup_service import counters

NOW = datetime(2026, 11, 20, 2, 10, tzinfo=UTC)  # scheduled window [11-19 23:00, 11-20 02:00): one chunk
HOURS = [datetime(2026, 11, 19, 23, tzinfo=UTC), datetime(2026, 11, 20, 1, tzinfo=UTC)]
WINDOW_DAYS = {HOURS[0].replace(hour=0), HOURS[1].replace(hour=0)}
OCTOBER, NOVEMBER, DECEMBER = (datetime(2026, month, 1, tzinfo=UTC) for month in (10, 11, 12))
TEAMS = [f"team-{n}" for n in range(4)]
Repository = TypeVar("Repository", bound=InMemoryUsageRepository)
QUIET = "team-quiet"  # November days stored, no traffic in the window: never asked for


def team_key(team: str, k: int) -> UsageKey:
    """Key 0: gpt-4o on gateway gw-a; key 1: gpt-4o-mini on gw-b, served at the priority tier."""
    return (UsageKey(team, "starter", "gpt-4o", "chat", "gw-a") if k == 0
            else UsageKey(team, "starter", "gpt-4o-mini", "mini", "gw-b", PRIORITY_TIER))


def requests(n: int, k: int) -> int:
    return 1 + n + 2 * k  # per hour of the window, team n, key k


def traffic() -> list[dict[str, Any]]:
    """The usage query's rows: each team x key x hour, 100 prompt and 10 completion tokens a request."""
    rows = []
    for hour in HOURS:
        for n, team in enumerate(TEAMS):
            for k in (0, 1):
                key, r = team_key(team, k), requests(n, k)
                rows.append({**dict.fromkeys(("CachedTokens", "StreamedRequests", "ErrorRequests",
                                             "UnmeteredRequests", "UnmeteredStreamed", "UnmeteredTruncated",
                                             "ReasoningTokens", "AudioPromptTokens", "CachedAudioTokens",
                                             "AudioCompletionTokens", "CacheWriteTokens"), 0),
                             "PeriodStart": hour, "SubscriptionId": team, "ProductId": key.product_id,
                             "Model": key.model, "Deployment": key.deployment, "ApimService": key.apim_service,
                             "ServiceTier": key.service_tier, "Requests": r, "PromptTokens": 100 * r,
                             "CompletionTokens": 10 * r, "TotalTokens": 110 * r})
    return rows


def day(at: datetime, key: UsageKey, n: int) -> UsageRow:
    return UsageRow(Granularity.DAY, at, key, counters(n, 100 * n, 10 * n))


def with_history(usage: Repository) -> Repository:
    """``usage`` with history: every team 7 requests of key 0 on Nov 3;
    team-0 1,000 on Oct 31 and team-1 500 on Dec 1 (other months: never counted in November); QUIET
    50 on Nov 5 and a November month row that says 999 (not asked for: left as it is)."""
    usage.upsert([day(NOVEMBER + timedelta(days=2), team_key(team, 0), 7) for team in TEAMS])
    usage.upsert([day(NOVEMBER - timedelta(days=1), team_key("team-0", 0), 1000),
                  day(DECEMBER, team_key("team-1", 0), 500),
                  day(NOVEMBER + timedelta(days=4), team_key(QUIET, 0), 50),
                  UsageRow(Granularity.MONTH, NOVEMBER, team_key(QUIET, 0), counters(999, 0, 0))])
    usage.upserts = 0
    if isinstance(usage, WatchedRepository):
        usage.month_writes = 0
    return usage


def stored_before() -> InMemoryUsageRepository:
    return with_history(InMemoryUsageRepository())


def expected_months() -> dict[UsageKey, Counters]:
    """November per key: the window's two hours, plus the 7 requests of Nov 3 under key 0."""
    out = {}
    for n, team in enumerate(TEAMS):
        for k in (0, 1):
            r = 2 * requests(n, k) + (7 if k == 0 else 0)
            out[team_key(team, k)] = counters(r, 100 * r, 10 * r)
    out[team_key(QUIET, 0)] = counters(999, 0, 0)
    return out


def months(usage: InMemoryUsageRepository) -> dict[UsageKey, Counters]:
    return {key: row.counters for (g, at, key), row in usage.rows.items() if g is Granularity.MONTH and at == NOVEMBER}


def day_reads(usage: InMemoryUsageRepository) -> list[str]:
    return sorted(subscription for subscription, granularity, _, _ in usage.read_calls
                  if granularity is Granularity.DAY)


def index_reads(usage: InMemoryUsageRepository) -> list[tuple[datetime, frozenset[str]]]:
    """Every read of the period index's month: ``month_sums`` and ``month_parts`` calls alike."""
    return [*usage.month_sum_calls, *((month, subscriptions) for month, subscriptions, _ in usage.month_part_calls)]


def service(usage: InMemoryUsageRepository, threshold: int, marks: InMemoryWatermarkRepository | None = None,
            **options: Any) -> RollupService:
    return RollupService(FakeLogSource(traffic()), usage, marks or InMemoryWatermarkRepository(),
                         lookback=timedelta(hours=3), ingestion_delay=timedelta(minutes=10),
                         max_chunk=timedelta(hours=6), clock=FakeClock(NOW), month_index_threshold=threshold,
                         **options)


def roll(usage: InMemoryUsageRepository, threshold: int, how: str, **options: Any) -> None:
    rollup = service(usage, threshold, **options)
    if how == "run":
        rollup.run()
    else:
        rollup.backfill(HOURS[0], HOURS[-1] + timedelta(hours=1))


@pytest.mark.parametrize("how", ["run", "backfill"])
@pytest.mark.parametrize("write_batch", [1, 1000])
def test_the_index_path_writes_the_rows_of_the_per_subscription_path(how: str, write_batch: int) -> None:
    by_index, one_by_one = stored_before(), stored_before()
    roll(by_index, 1, how, write_batch=write_batch)
    roll(one_by_one, 10**6, how, write_batch=write_batch)

    assert index_reads(by_index) == [(NOVEMBER, frozenset(TEAMS))] and day_reads(by_index) == []
    if how == "run":  # read before the chunk is written, its (team, day)s kept apart
        assert by_index.month_part_calls == [(NOVEMBER, frozenset(TEAMS),
                                              frozenset((team, at) for team in TEAMS for at in WINDOW_DAYS))]
    assert index_reads(one_by_one) == [] and day_reads(one_by_one) == TEAMS
    assert months(by_index) == expected_months()
    assert by_index.rows == one_by_one.rows


@pytest.mark.parametrize("write_batch", [1, 1000])
def test_a_rerun_and_a_key_the_chunk_no_longer_returns_give_the_rows_of_the_per_subscription_path(
        write_batch: int) -> None:
    """The window's days already stored (a rerun replaces them, never adds them twice), and team-0
    holding a day row of Nov 20 under a key the query does not return (it stays in the month)."""
    gone = UsageKey("team-0", "starter", "gpt-35-turbo", "legacy", "gw-a")
    by_index, one_by_one = stored_before(), stored_before()
    for usage in (by_index, one_by_one):
        usage.upsert([day(HOURS[1].replace(hour=0), gone, 40)])
    for _ in range(2):
        roll(by_index, 1, "run", write_batch=write_batch)
        roll(one_by_one, 10**6, "run", write_batch=write_batch)

    assert len(by_index.month_part_calls) == 2 and day_reads(by_index) == []
    assert by_index.rows == one_by_one.rows
    assert months(by_index) == {**expected_months(), gone: counters(40, 4000, 400)}


@pytest.mark.parametrize("how", ["run", "backfill"])
def test_the_threshold_chooses_the_path(how: str) -> None:
    at_threshold, below = stored_before(), stored_before()
    roll(at_threshold, len(TEAMS), how)
    roll(below, len(TEAMS) + 1, how)

    assert len(index_reads(at_threshold)) == 1 and day_reads(at_threshold) == []
    assert index_reads(below) == [] and day_reads(below) == TEAMS
    assert months(at_threshold) == months(below) == expected_months()


@pytest.mark.parametrize("how", ["run", "backfill"])
def test_an_incomplete_index_falls_back_to_one_read_per_subscription(how: str) -> None:
    usage = stored_before()
    usage.index_complete = False
    roll(usage, 1, how)

    assert index_reads(usage) == [(NOVEMBER, frozenset(TEAMS))]  # asked, answered None
    assert day_reads(usage) == TEAMS
    assert months(usage) == expected_months()


class WatchedRepository(InMemoryUsageRepository):
    """Records, at each ``month_parts``, which (subscription, day)s of the window are stored, and each
    write's (granularity, subscription)s; fails the ``fail_month_write``-th write of month rows."""

    def __init__(self, fail_month_write: int | None = None) -> None:
        super().__init__()
        self.fail_month_write = fail_month_write  # counted from the first write after the history
        self.month_writes = 0
        self.days_stored_at_sum: list[set[tuple[str, datetime]]] = []
        self.writes: list[set[tuple[Granularity, str]]] = []

    def month_parts(self, month: datetime, subscriptions: frozenset[str],
                    apart: frozenset[tuple[str, datetime]]) -> MonthParts | None:
        self.days_stored_at_sum.append({(row.subscription_id, at) for (g, at, _), row in self.rows.items()
                                        if g is Granularity.DAY and at in WINDOW_DAYS})
        return super().month_parts(month, subscriptions, apart)

    def upsert(self, rows: Iterable[UsageRow]) -> int:
        batch = list(rows)
        self.writes.append({(row.granularity, row.subscription_id) for row in batch})
        if any(row.granularity is Granularity.MONTH for row in batch):
            self.month_writes += 1
            if self.month_writes == self.fail_month_write:
                raise StorageError("Table Storage operation failed: the service is unavailable (test)")
        return super().upsert(batch)


def test_the_index_is_read_before_the_chunk_and_each_month_goes_with_its_days() -> None:
    usage, marks = with_history(WatchedRepository()), InMemoryWatermarkRepository()
    usage.writes.clear()
    result = service(usage, 1, marks, write_batch=1).run()  # a write per team

    assert usage.days_stored_at_sum == [set()]  # one read, before any day of the window was written
    # one write per team, holding its hours, its days and its month: one transaction, not two
    assert usage.writes == [{(granularity, team) for granularity in Granularity} for team in TEAMS]
    assert result.derived_rows_written == len(TEAMS) * 2 * 2 + len(TEAMS) * 2  # day rows (2 days x 2 keys), months
    assert result.watermark == marks.get(WATERMARK_NAME).value == NOW.replace(minute=0)
    assert months(usage) == expected_months()


def test_a_failed_month_write_from_the_index_leaves_the_watermark_and_a_rerun_converges() -> None:
    usage, marks = with_history(WatchedRepository(fail_month_write=2)), InMemoryWatermarkRepository()
    with pytest.raises(StorageError, match="unavailable"):
        service(usage, 1, marks, write_batch=1).run()
    assert marks.get(WATERMARK_NAME).value is None

    usage.fail_month_write = None
    service(usage, 1, marks).run()
    assert months(usage) == expected_months()
    assert marks.get(WATERMARK_NAME).value == NOW.replace(minute=0)


def test_month_totals_sum_stored_entities_as_reading_each_subscription_would() -> None:
    """``MonthTotals`` (what ``TableStore.month_sums`` adds each index page into) against
    ``usage_row`` + ``merge`` over the same stored entities, pages of any size."""
    history = [day(NOVEMBER + timedelta(days=d), team_key(team, k), 1 + d + 3 * n + k)
               for n, team in enumerate([*TEAMS, QUIET]) for k in (0, 1) for d in (0, 4, 29)]
    history.append(day(NOVEMBER - timedelta(days=1), team_key("team-0", 0), 1000))  # not in this month's days
    long_name = "team-" + "x" * 5000  # stored shortened; asked for by its full name
    history.append(day(NOVEMBER + timedelta(days=9), team_key(long_name, 1), 13))
    stored = [{name: plain(value) for name, value in index_entity(usage_entity(row)).items()} for row in history]
    # an index partition is ``<shard>|d|<day>``: November's are those of its 30 days, in any shard
    november = {entity["PartitionKey"] for entity in stored if entity["PartitionKey"].split("|", 1)[1]
                in {f"d|2026-11-{day:02d}" for day in range(1, 31)}}
    assert {partition.split("|", 1)[0] for partition in november} < {f"s{n:02d}" for n in range(16)}
    wanted = frozenset([*TEAMS[:3], long_name])  # team-3 and QUIET not asked for

    for page_size in (1, 7, 1000):
        # the store is asked with stored names (TableStore.month_sums turns the names asked for into them)
        totals = MonthTotals(NOVEMBER, frozenset(storable_name(name) for name in wanted), tuple(_PROPERTY.values()))
        in_month = [entity for entity in stored if entity["PartitionKey"] in november]
        for first in range(0, len(in_month), page_size):
            totals.add(in_month[first:first + page_size])
        read_each = [row for subscription in sorted(wanted)
                     for row in merge([usage_row(e) for e in stored if e["PartitionKey"] in november
                                       and usage_row(e).subscription_id == storable_name(subscription)],
                                      Granularity.MONTH)]
        assert totals.rows() == merge(read_each, Granularity.MONTH), page_size  # merge: its order
        assert totals.entities_read == len(in_month)
    assert {row.subscription_id for row in read_each} == {*TEAMS[:3], storable_name(long_name)} != {
        *TEAMS[:3], long_name}
    assert next(row for row in read_each if row.key == team_key("team-0", 0)).counters == counters(
        1 + 5 + 30, 100 * 36, 10 * 36)  # Nov 1, 5 and 30; not Oct 31
