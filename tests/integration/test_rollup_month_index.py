"""Month rows summed from the period index against Azurite: ``TableStore.month_sums`` gives what
merging each subscription's own day reads gives (several keys, services, a priority tier, a shortened
name, a day partition of more than one response page; days of other months, hour and month rows and
subscriptions not asked for left out), and ``None`` once the index is not known complete; a scheduled
run over more subscriptions than the (lowered) threshold reads no subscription's days on its own and
stores month rows equal to the sums computed here from what was written."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.tables import TableStore
from shared.adapters.usage_index import COMPLETE, META_PARTITION
from shared.composition import table_store
from shared.core.keys import storable_name
from shared.core.usage import PRIORITY_TIER, Counters, Granularity, UsageKey, UsageRow, merge
from shared.ports import MonthParts
from shared.services.rollup import WATERMARK_NAME, RollupService
from shared.settings import Settings
from tests.fakes import FakeClock, FakeLogSource

OCTOBER, NOVEMBER, DECEMBER = (datetime(2026, month, 1, tzinfo=UTC) for month in (10, 11, 12))
LONG_NAME = "team-" + "y" * 5000  # stored shortened (shared.core.keys)


def key(team: str, k: int) -> UsageKey:
    """Key 0: gpt-4o on gateway gw-a; key 1: gpt-4o-mini on gw-b at the priority tier; key 2: no service."""
    return [UsageKey(team, "starter", "gpt-4o", "chat", "gw-a"),
            UsageKey(team, "starter", "gpt-4o-mini", "mini", "gw-b", PRIORITY_TIER),
            UsageKey(team, "", "gpt-4o", "chat")][k]


def counts(n: int) -> Counters:
    return Counters(requests=n, prompt_tokens=100 * n, completion_tokens=10 * n, total_tokens=110 * n,
                    cached_tokens=n // 3, reasoning_tokens=n % 7, error_requests=n % 2)


def row(granularity: Granularity, at: datetime, usage_key: UsageKey, n: int) -> UsageRow:
    return UsageRow(granularity, at, usage_key, counts(n))


class CountingStore:
    """The real store, with its one-subscription day reads and its index month reads (``month_sums``,
    ``month_parts``) counted."""

    def __init__(self, inner: TableStore) -> None:
        self.inner = inner
        self.day_reads: list[str] = []
        self.month_sum_calls: list[tuple[datetime, int]] = []

    def read(self, subscription_id: str, granularity: Granularity, start: datetime, end: datetime) -> list[UsageRow]:
        if granularity is Granularity.DAY:
            self.day_reads.append(subscription_id)
        return self.inner.read(subscription_id, granularity, start, end)

    def month_sums(self, month: datetime, subscriptions: frozenset[str]) -> list[UsageRow] | None:
        self.month_sum_calls.append((month, len(subscriptions)))
        return self.inner.month_sums(month, subscriptions)

    def month_parts(self, month: datetime, subscriptions: frozenset[str],
                    apart: frozenset[tuple[str, datetime]]) -> MonthParts | None:
        self.month_sum_calls.append((month, len(subscriptions)))
        return self.inner.month_parts(month, subscriptions, apart)

    def upsert(self, rows: Iterable[UsageRow]) -> int:
        return self.inner.upsert(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_month_sums_equal_each_subscriptions_merged_days(settings: Settings) -> None:
    store = table_store(settings)
    teams = [f"team-{n:03d}" for n in range(6)] + [LONG_NAME]
    written = [row(Granularity.DAY, NOVEMBER + timedelta(days=d), key(team, k), 1 + d + 5 * n + 11 * k)
               for n, team in enumerate(teams) for k in (0, 1, 2) for d in (0, 14, 29)]
    written += [row(Granularity.DAY, OCTOBER + timedelta(days=30), key("team-000", 0), 1000),  # other months
                row(Granularity.DAY, DECEMBER, key("team-001", 1), 2000),
                row(Granularity.HOUR, NOVEMBER + timedelta(days=3, hours=5), key("team-000", 0), 3000),  # not days
                row(Granularity.MONTH, NOVEMBER, key("team-002", 2), 4000)]
    # 600 more subscriptions on Nov 30: that day partition is more than one response page (1,000 entities)
    crowd = [f"crowd-{n:04d}" for n in range(600)]
    written += [row(Granularity.DAY, NOVEMBER + timedelta(days=29), key(team, k), 1 + n % 13 + k)
                for n, team in enumerate(crowd) for k in (0, 1)]
    store.upsert(written)

    wanted = frozenset([*teams[:4], LONG_NAME, *crowd[::3]])  # team-004, team-005 and most of the crowd not asked
    summed = store.month_sums(NOVEMBER, wanted)

    read_each = merge([day for team in wanted for day in store.read(team, Granularity.DAY, NOVEMBER, DECEMBER)],
                      Granularity.MONTH)
    assert summed is not None and sorted(summed, key=str) == sorted(read_each, key=str)
    # and the sums computed here, from what was written
    expected: dict[UsageKey, Counters] = {}
    for written_row in written:
        stored_team = storable_name(written_row.subscription_id)
        if (written_row.granularity is Granularity.DAY and NOVEMBER <= written_row.period_start < DECEMBER
                and stored_team in {storable_name(team) for team in wanted}):
            stored_key = UsageKey(stored_team, *[getattr(written_row.key, f) for f in (
                "product_id", "model", "deployment", "apim_service", "service_tier")])
            expected[stored_key] = expected.get(stored_key, Counters()) + written_row.counters
    assert {month_row.key: month_row.counters for month_row in summed} == expected
    assert len(summed) == 5 * 3 + 200 * 2
    assert expected[key("team-000", 0)] == counts(1) + counts(15) + counts(30)  # not Oct 31's 1,000 or the hour

    # an index not known to be complete is not read: the caller reads each subscription's days
    store.table_client(store.index_table).delete_entity(META_PARTITION, COMPLETE)
    assert table_store(settings).month_sums(NOVEMBER, wanted) is None


@pytest.mark.parametrize("fresh", [False, True])
def test_a_run_over_many_subscriptions_sums_months_from_the_index(settings: Settings, fresh: bool) -> None:
    """With history, and on a fresh installation (its first run reads the index before its first
    write: an empty usage table makes the index complete)."""
    now = datetime(2026, 11, 20, 3, 10, tzinfo=UTC)  # window [00:00, 03:00): three hours of Nov 20
    hours = [datetime(2026, 11, 20, h, tzinfo=UTC) for h in range(3)]
    teams = [f"team-{n:03d}" for n in range(40)]
    store = table_store(settings)
    # history: November days before the window, an October day, and a team with no traffic now
    store.upsert([] if fresh else [row(Granularity.DAY, NOVEMBER + timedelta(days=d), key(team, k), 2 + n + d)
                  for n, team in enumerate(teams) for k in (0, 1) for d in (1, 9)]
                 + [row(Granularity.DAY, OCTOBER + timedelta(days=5), key("team-000", 0), 500),
                    row(Granularity.MONTH, NOVEMBER, key("quiet", 0), 999)])
    records = [{**{name: 0 for name in ("CachedTokens", "StreamedRequests", "ErrorRequests", "UnmeteredRequests",
                                        "UnmeteredStreamed", "UnmeteredTruncated", "ReasoningTokens",
                                        "AudioPromptTokens", "CachedAudioTokens", "AudioCompletionTokens",
                                        "CacheWriteTokens")},
                "PeriodStart": hour, "SubscriptionId": team, "ProductId": key(team, k).product_id,
                "Model": key(team, k).model, "Deployment": key(team, k).deployment,
                "ApimService": key(team, k).apim_service, "ServiceTier": key(team, k).service_tier,
                "Requests": 1 + n + k + hour.hour, "PromptTokens": 100 * (1 + n + k + hour.hour),
                "CompletionTokens": 10 * (1 + n + k + hour.hour), "TotalTokens": 110 * (1 + n + k + hour.hour)}
               for hour in hours for n, team in enumerate(teams) for k in (0, 1)]
    counting = CountingStore(store)
    rollup = RollupService(FakeLogSource(records), counting, store, lookback=timedelta(hours=3),
                           ingestion_delay=timedelta(minutes=10), max_chunk=timedelta(hours=6),
                           clock=FakeClock(now), write_batch=16, month_index_threshold=30)
    result = rollup.run()

    assert counting.month_sum_calls == [(NOVEMBER, len(teams))] and counting.day_reads == []
    assert result.watermark == store.get(WATERMARK_NAME).value == now.replace(hour=3, minute=0)
    expected: dict[UsageKey, Counters] = {} if fresh else {key("quiet", 0): counts(999)}  # left as it was
    for n, team in enumerate(teams):
        for k in (0, 1):
            history = Counters() if fresh else counts(2 + n + 1) + counts(2 + n + 9)
            window = sum(1 + n + k + h for h in range(3))
            expected[key(team, k)] = history + Counters(requests=window, prompt_tokens=100 * window,
                                                        completion_tokens=10 * window, total_tokens=110 * window)
    months = store.read_all(Granularity.MONTH, NOVEMBER, DECEMBER)
    assert {month_row.key: month_row.counters for month_row in months} == expected
