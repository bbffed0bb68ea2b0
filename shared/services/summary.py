"""One subscription's month at a glance: totals, cost, quota use, unmetered calls, top models, days.

Everything comes from the subscription's own partition (its day rows of the month: one RowKey-range
read) and the quota store; quota shares use the same rules as the alerts (``Quota.fraction``, the
``*`` default per period, thresholds crossed at ``share >= t/100``, the constant-burn forecast).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from shared.core.alerting import _percent, crossed, forecast
from shared.core.months import next_month
from shared.core.pricing import Cost, PriceTable, sum_costs
from shared.core.quotas import DEFAULT_SUBSCRIPTION, Period, Quota, QuotaBook
from shared.core.usage import Counters, Granularity
from shared.ports import QuotaRepository, UsageRepository
from shared.services.costing import usage_costs

TOP_MODELS = 10


@dataclass(frozen=True)
class Usage:
    """Counters and their cost, summed over some rows."""

    counters: Counters
    cost: Cost


@dataclass(frozen=True)
class QuotaUse:
    """How much of the quota in force for one period is used, and where the period is heading."""

    quota: Quota
    period_start: datetime
    used_tokens: int
    used_cost: Cost
    used_percent: Decimal
    thresholds_reached: list[int]
    projected_percent: Decimal | None

    @property
    def inherited(self) -> bool:
        """The ``*`` default applies (the subscription has no quota of its own for the period)."""
        return self.quota.subscription_id == DEFAULT_SUBSCRIPTION


@dataclass(frozen=True)
class SubscriptionSummary:
    subscription_id: str
    month: datetime
    currency: str
    totals: Usage
    month_quota: QuotaUse | None
    day_quota: QuotaUse | None  # today's use, only while the month is running
    thresholds: tuple[int, ...]
    top_models: list[tuple[str, Usage]]  # most tokens first
    days: list[tuple[datetime, Usage]]  # every day of the month up to today, zeros included


def _quota_use(book: QuotaBook, subscription: str, period: Period, start: datetime, end: datetime,
               as_of: datetime, tokens: int, cost: Cost, thresholds: Sequence[int]) -> QuotaUse | None:
    quota = book.effective(subscription, period)
    if quota is None:
        return None
    share = quota.fraction(tokens, cost.amount)
    projection = forecast(share, start, end, as_of) if share else None
    return QuotaUse(quota, start, tokens, cost, _percent(share), crossed(share, thresholds),
                    None if projection is None else _percent(projection.projected_share))


def subscription_summary(repository: UsageRepository, prices: Callable[[], PriceTable], quotas: QuotaRepository,
                         thresholds: Sequence[int], subscription: str, month: datetime,
                         now: datetime) -> SubscriptionSummary:
    """``prices``: the price table in force, asked once before anything is read."""
    table = prices()
    end = next_month(month)
    rows = repository.read(subscription, Granularity.DAY, month, end)
    costs = usage_costs(rows, repository, table)  # per meter of the deployment in force, PTU shares included
    counters = sum((row.counters for row in rows), Counters())
    cost = sum_costs(costs)

    days: dict[datetime, tuple[Counters, Cost]] = {}
    models: dict[str, tuple[Counters, Cost]] = {}
    for row, row_cost_ in zip(rows, costs, strict=True):
        so_far = days.get(row.period_start, (Counters(), Cost()))
        days[row.period_start] = (so_far[0] + row.counters, so_far[1] + row_cost_)
        model = models.get(row.key.model, (Counters(), Cost()))
        models[row.key.model] = (model[0] + row.counters, model[1] + row_cost_)

    # Every day of the month up to today (or the whole month when it is over), zeros included.
    last = min(end, Granularity.DAY.period_start(now) + timedelta(days=1))
    series = []
    day = month
    while day < last:
        series.append((day, Usage(*days.get(day, (Counters(), Cost())))))
        day += timedelta(days=1)

    top = sorted(models.items(), key=lambda item: (-item[1][0].total_tokens, item[0]))[:TOP_MODELS]
    book = QuotaBook([*quotas.for_subscription(subscription), *quotas.for_subscription(DEFAULT_SUBSCRIPTION)])
    as_of = min(max(now, month), end)
    month_quota = _quota_use(book, subscription, Period.MONTH, month, end, as_of, counters.total_tokens, cost,
                             thresholds)
    day_quota = None
    if month <= now < end:  # today's use against the day quota, only while the month is running
        today = Granularity.DAY.period_start(now)
        today_counters, today_cost = days.get(today, (Counters(), Cost()))
        day_quota = _quota_use(book, subscription, Period.DAY, today, today + timedelta(days=1), now,
                               today_counters.total_tokens, today_cost, thresholds)
    return SubscriptionSummary(subscription, month, table.currency, Usage(counters, cost), month_quota, day_quota,
                               tuple(thresholds), [(name, Usage(*usage)) for name, usage in top], series)
